/* The start-up comparison of a run's settings across ranks (convoy/dist.h): each rank writes
 * its settings as lines of text; equal hashes and lengths pass at the cost of one small
 * allgather, and a difference sends rank 0's and the differing rank's text to every rank, which
 * names the first setting that differs. */
#define _GNU_SOURCE /* open_memstream */
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/dist.h"

void cv_setting_switch(FILE *f, const char *name, int on) { fprintf(f, "s\t%s\t%s\n", name, on ? "yes" : "no"); }

void cv_setting_value(FILE *f, const char *name, const char *fmt, ...)
{
    fprintf(f, "v\t%s\t", name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
}

void cv_setting_model(FILE *f, const char *name) { fprintf(f, "m\t%s\t", name); }

/* one line of a settings text: its kind, name and value (pointers into the text, with lengths) */
typedef struct {
    char kind;
    const char *name, *value;
    int name_len, value_len;
} setting;

/* Reads the line at *p into s and moves *p past it; false at the end of the text. */
static bool next_setting(const char **p, setting *s)
{
    const char *l = *p;
    if (!*l) return false;
    const char *end = strchr(l, '\n');
    if (!end) end = l + strlen(l);
    *p = *end ? end + 1 : end;
    const char *t1 = memchr(l, '\t', (size_t)(end - l)), *t2 = t1 ? memchr(t1 + 1, '\t', (size_t)(end - t1 - 1)) : NULL;
    *s = (setting){l[0], l, l, (int)(end - l), 0};
    if (t2) *s = (setting){l[0], t1 + 1, t2 + 1, (int)(t2 - t1 - 1), (int)(end - t2 - 1)};
    return true;
}

static bool same_text(const char *a, int na, const char *b, int nb) { return na == nb && memcmp(a, b, (size_t)na) == 0; }

/* The first space-separated words of two values that differ: *a and *b at them, lengths in *na, *nb. */
static void first_word_apart(const char **a, int *na, const char **b, int *nb)
{
    const char *ea = *a + *na, *eb = *b + *nb;
    for (;;) {
        const char *wa = *a, *wb = *b;
        while (*a < ea && **a != ' ') (*a)++;
        while (*b < eb && **b != ' ') (*b)++;
        if (!same_text(wa, (int)(*a - wa), wb, (int)(*b - wb)) || (*a == ea && *b == eb)) {
            *na = (int)(*a - wa);
            *nb = (int)(*b - wb);
            *a = wa;
            *b = wb;
            return;
        }
        if (*a < ea) (*a)++;
        if (*b < eb) (*b)++;
    }
}

/* A model line that differs: "KIND KEY=THEIRS vs OURS" when the first differing words are the same
 * key, else the two whole values. */
static void model_diff(const setting *s0, const setting *s, int rank, const char *whose, char *msg, size_t n)
{
    const char *a = s->value, *b = s0->value;
    int na = s->value_len, nb = s0->value_len;
    first_word_apart(&a, &na, &b, &nb);
    const char *ka = memchr(a, '=', (size_t)na), *kb = memchr(b, '=', (size_t)nb);
    /* the line's keyword, unless the name says it ("compile: learning_rate=...") */
    int kind_len = (int)strcspn(s->value, " ");
    const bool named = same_text(s->name, s->name_len, s->value, kind_len);
    if (named) kind_len = 0;
    if (ka && kb && same_text(a, (int)(ka - a), b, (int)(kb - b)) && a != s->value)
        snprintf(msg, n, "rank %d's %s differs from rank 0's (%.*s: %.*s%s%.*s vs %.*s)", rank, whose, s->name_len,
                 s->name, kind_len, s->value, named ? "" : " ", na, a, (int)(nb - (kb + 1 - b)), kb + 1);
    else
        snprintf(msg, n, "rank %d's %s differs from rank 0's (%.*s: %.*s vs %.*s)", rank, whose, s->name_len, s->name,
                 s->value_len, s->value, s0->value_len, s0->value);
}

void cv_settings_diff(const char *text0, const char *text, int rank, const char *whose, char *msg, size_t n)
{
    msg[0] = '\0';
    const char *p0 = text0, *p = text;
    setting s0, s;
    for (;;) {
        const bool more0 = next_setting(&p0, &s0), more = next_setting(&p, &s);
        if (!more0 && !more) return;
        if (!more0 || !more) { /* one text ends: a different program, or a bug */
            const setting *x = more ? &s : &s0;
            snprintf(msg, n, "rank %d has settings rank 0 has not, or the reverse (from %.*s on)", rank, x->name_len,
                     x->name);
            return;
        }
        if (s0.kind == s.kind && same_text(s0.name, s0.name_len, s.name, s.name_len) &&
            same_text(s0.value, s0.value_len, s.value, s.value_len))
            continue;
        if (s0.kind != s.kind || !same_text(s0.name, s0.name_len, s.name, s.name_len))
            snprintf(msg, n, "rank %d has %.*s %.*s where rank 0 has %.*s %.*s", rank, s.name_len, s.name, s.value_len,
                     s.value, s0.name_len, s0.name, s0.value_len, s0.value);
        else if (s.kind == 's')
            snprintf(msg, n, "rank %d has %.*s, rank %d has not", s.value[0] == 'y' ? rank : 0, s.name_len, s.name,
                     s.value[0] == 'y' ? 0 : rank);
        else if (s.kind == 'm')
            model_diff(&s0, &s, rank, whose, msg, n);
        else
            snprintf(msg, n, "ranks differ in %.*s: rank %d has %.*s, rank 0 has %.*s", s.name_len, s.name, rank,
                     s.value_len, s.value, s0.value_len, s0.value);
        return;
    }
}

int cv_dist_check_settings(const cv_dist *d, const char *text, const char *whose, cv_err *err)
{
    if (d->size == 1) return 0;
    const size_t len = strlen(text);
    const unsigned long long mine[2] = {cv_hash_bytes(CV_HASH_INIT, text, len), len};
    unsigned long long *all = cv_malloc(sizeof mine * (size_t)d->size, "settings exchange", err);
    if (!all) return -1;
    if (cv_dist_allgather(d, mine, sizeof mine, all, err)) {
        free(all);
        return -1;
    }
    int bad = 0;
    for (int r = 1; r < d->size && !bad; r++)
        if (all[2 * r] != all[0] || all[2 * r + 1] != all[1]) bad = r;
    const long long len0 = (long long)all[1], len_bad = (long long)all[2 * bad + 1];
    free(all);
    if (!bad) return 0;
    /* rank 0's text and the differing rank's, to every rank */
    if (len0 > 1 << 26 || len_bad > 1 << 26) return cv_errf(err, "the ranks' settings texts are too long to compare");
    char *t0 = cv_malloc((size_t)len0 + 1, "settings exchange", err);
    char *tb = t0 ? cv_malloc((size_t)len_bad + 1, "settings exchange", err) : NULL;
    int rc = tb ? MPI_SUCCESS : MPI_ERR_NO_MEM;
    if (tb) {
        if (d->rank == 0) memcpy(t0, text, (size_t)len0);
        if (d->rank == bad) memcpy(tb, text, (size_t)len_bad);
        t0[len0] = tb[len_bad] = '\0';
        rc = MPI_Bcast(t0, (int)len0, MPI_CHAR, 0, d->comm);
        if (rc == MPI_SUCCESS) rc = MPI_Bcast(tb, (int)len_bad, MPI_CHAR, bad, d->comm);
    }
    int out = -1;
    if (rc == MPI_SUCCESS) {
        char msg[CV_ERR_MSG];
        cv_settings_diff(t0, tb, bad, whose, msg, sizeof msg);
        out = msg[0] ? cv_errf(err, "%s", msg)
                     : cv_errf(err, "rank %d's settings differ from rank 0's (hash collision?)", bad);
    } else if (tb) {
        out = cv_errf(err, "MPI_Bcast of the ranks' settings failed");
    }
    free(t0);
    free(tb);
    return out;
}

int cv_dist_check_written(const cv_dist *d, void (*write)(FILE *f, const void *arg), const void *arg,
                          const char *whose, cv_err *err)
{
    if (d->size == 1) return 0;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f) write(f, arg);
    const int failed = !f || fclose(f) != 0 || !text;
    if (failed) cv_errf(err, "out of memory for the run's settings");
    int rc = cv_dist_agree(d, failed, err);
    if (rc == 0) rc = cv_dist_check_settings(d, text, whose, err);
    free(text);
    return rc;
}
