/* The commands' flag parser: GNU getopt_long's syntax over each command's cli_flag table, with
 * exact names only (an abbreviation would change meaning when a flag is added) and the nearest
 * known flag suggested for an unknown one. getopt_long itself accepts abbreviations and keeps
 * global state, hence this parser. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

void (*cli_describe)(const cli_command *c);

/* the common flags' letters (-h is --help's, -V the program's --version) */
static const struct {
    char letter;
    const char *name;
} shorts[] = {{'e', "epochs"}, {'b', "batch-size"}, {'t', "threads"}, {'o', "out"}, {'q', "quiet"}};

char cli_flag_short(const cli_flag *f)
{
    for (size_t i = 0; i < sizeof shorts / sizeof shorts[0]; i++)
        if (strcmp(f->name, shorts[i].name) == 0) return shorts[i].letter;
    return 0;
}

static int help(const cli_command *c)
{
    if (cli_describe) cli_describe(c);
    else if (cli_help_roff) cli_man_command(c, stdout);
    else cli_usage(c, stdout);
    return -1;
}

/* Edit distance (insertions, deletions, substitutions) between a[0..na) and b, or more than
 * `cap` as cap + 1: flag names are short. */
static int distance(const char *a, int na, const char *b, int cap)
{
    enum { MAX = 64 };
    const int nb = (int)strlen(b);
    if (na >= MAX || nb >= MAX) return cap + 1;
    int row[MAX], prev[MAX];
    for (int j = 0; j <= nb; j++) prev[j] = j;
    for (int i = 1; i <= na; i++) {
        row[0] = i;
        for (int j = 1; j <= nb; j++) {
            const int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            const int del = prev[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, row, sizeof(int) * (size_t)(nb + 1));
    }
    return prev[nb] <= cap ? prev[nb] : cap + 1;
}

/* The known flags nearest to --name[0..n) into near[0..3): those the name begins (an
 * abbreviation), else the closest within two edits and a third of its length. Returns how many. */
static int nearest(const cli_command *c, const char *name, int n, const char *near[3])
{
    int k = 0;
    for (int i = 0; i < c->nflags && k < 3; i++)
        if (n > 0 && strncmp(c->flags[i].name, name, (size_t)n) == 0) near[k++] = c->flags[i].name;
    if (k) return k;
    int best_d = n / 3 < 2 ? n / 3 : 2;
    for (int i = 0; i < c->nflags; i++) {
        const int d = distance(name, n, c->flags[i].name, best_d);
        if (d <= best_d && (d < best_d || !k)) near[0] = c->flags[i].name, best_d = d, k = 1;
    }
    return k;
}

static int unknown(const cli_command *c, const char *arg, const char *name, int n)
{
    const char *near[3];
    const int k = nearest(c, name, n, near);
    if (k == 0) return cli_usage_fail(NULL, "%s: unknown flag '%s' (see convoy %s --help)", c->name, arg, c->name);
    char list[200];
    int len = 0;
    for (int i = 0; i < k; i++)
        len += snprintf(list + len, sizeof list - (size_t)len, "%s--%s", i == 0 ? "" : i == k - 1 ? " or " : ", ",
                        near[i]);
    return cli_usage_fail(NULL, "%s: unknown flag '%s'; did you mean %s? (see convoy %s --help)", c->name, arg, list,
                          c->name);
}

static int set(const cli_command *c, const cli_flag *f, const char *shown, const char *value, int *i, int argc,
               char **argv)
{
    if (!f->arg_name) {
        *f->on = true;
        return 0;
    }
    if (!value && *i + 1 >= argc) return cli_usage_fail(NULL, "%s: %s needs a value (%s)", c->name, shown, f->arg_name);
    *f->value = value ? value : argv[++*i];
    return 0;
}

/* `--name`, `--name=value` or `--name value` */
static int long_flag(const cli_command *c, int *i, int argc, char **argv)
{
    const char *a = argv[*i], *name = a + 2, *eq = strchr(name, '=');
    const int n = eq ? (int)(eq - name) : (int)strlen(name);
    if (!eq && strcmp(name, "help") == 0) return help(c);
    for (int k = 0; k < c->nflags; k++) {
        const cli_flag *f = &c->flags[k];
        if ((int)strlen(f->name) != n || strncmp(f->name, name, (size_t)n) != 0) continue;
        if (eq && !f->arg_name)
            return cli_usage_fail(NULL, "%s: --%s takes no value (in '%s')", c->name, f->name, a);
        char shown[80];
        snprintf(shown, sizeof shown, "--%s", f->name);
        return set(c, f, shown, eq ? eq + 1 : NULL, i, argc, argv);
    }
    char shown[80];
    snprintf(shown, sizeof shown, "--%.*s", n, name);
    return unknown(c, shown, name, n);
}

/* `-q`, `-qv` (switches bundled), `-e 3`, `-e3`, `-qe3` */
static int short_flags(const cli_command *c, int *i, int argc, char **argv)
{
    const char *a = argv[*i];
    for (int k = 0; k < c->nflags; k++) /* -epochs: a long flag after one dash, not -e pochs */
        if (a[2] && strcmp(a + 1, c->flags[k].name) == 0) return unknown(c, a, a + 1, (int)strlen(a + 1));
    for (int j = 1; a[j]; j++) {
        if (a[j] == 'h') return help(c);
        const cli_flag *f = NULL;
        for (int k = 0; k < c->nflags && !f; k++)
            if (cli_flag_short(&c->flags[k]) == a[j]) f = &c->flags[k];
        const char shown[3] = {'-', a[j], '\0'};
        if (!f) return unknown(c, shown, "", 0);
        if (f->arg_name) return set(c, f, shown, a[j + 1] ? a + j + 1 : NULL, i, argc, argv);
        if (set(c, f, shown, NULL, i, argc, argv)) return 1;
    }
    return 0;
}

int cli_parse(const cli_command *c, int argc, char **argv, const char **pos, int *npos)
{
    *npos = 0;
    bool flags_end = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!flags_end && strcmp(a, "--") == 0) {
            flags_end = true;
            continue;
        }
        if (flags_end || a[0] != '-' || a[1] == '\0') { /* "-" is a positional (standard input) */
            if (*npos >= c->max_pos) {
                cli_usage_fail(NULL, "%s: unexpected argument '%s' (see convoy %s --help)", c->name, a, c->name);
                return 1;
            }
            pos[(*npos)++] = a;
            continue;
        }
        const int rc = a[1] == '-' ? long_flag(c, &i, argc, argv) : short_flags(c, &i, argc, argv);
        if (rc) return rc < 0 ? -1 : 1;
    }
    if (*npos < c->min_pos) {
        cli_usage_fail(NULL, "%s: missing %s (usage: convoy %s %s)", c->name, c->usage, c->name, c->usage);
        return 1;
    }
    return 0;
}
