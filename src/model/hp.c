/* Hyperparameter expressions of the model file (`units=hp.int(32,256,step=32)`): their syntax
 * and the text of a value. The parser checks the values against the key they stand for;
 * sampling is convoy tune's (src/tune). */
#include "convoy/model.h"
#include "model/parse-impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"int", "float", "choice", "bool"};

static bool is_name(const char *s)
{
    if (!*s || !(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return false;
    for (; *s; s++)
        if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return false;
    return strlen(s) < CV_HP_TEXT;
}

static const char *const usage[] = {
    "hp.int(lo,hi[,step=s][,name=n])", "hp.float(lo,hi[,log][,name=n])",
    "hp.choice(a,b,...[,name=n])", "hp.bool([name=n])"};

int cv_hp_parse(const char *expr, cv_hp *hp, cv_err *err)
{
    memset(hp, 0, sizeof *hp);
    const char *open = strchr(expr, '(');
    const size_t len = strlen(expr);
    if (strncmp(expr, "hp.", 3) != 0 || !open || len < 2 || expr[len - 1] != ')')
        return cv_errf(err, "bad hyperparameter '%s': expected hp.int(...), hp.float(...), hp.choice(...) "
                       "or hp.bool() (no spaces inside)", expr);
    int kind = -1;
    for (int k = 0; k < 4; k++)
        if ((size_t)(open - expr - 3) == strlen(kind_names[k]) && strncmp(expr + 3, kind_names[k], strlen(kind_names[k])) == 0)
            kind = k;
    if (kind < 0)
        return cv_errf(err, "bad hyperparameter '%s': unknown kind (hp.int, hp.float, hp.choice, hp.bool)", expr);
    hp->kind = (cv_hp_kind)kind;
    hp->step = 1;

    /* the arguments: positional values, `log`, step= and name= */
    char args[256];
    const size_t alen = (size_t)(expr + len - 1 - (open + 1));
    if (alen >= sizeof args) return cv_errf(err, "bad hyperparameter '%.40s...': too long", expr);
    memcpy(args, open + 1, alen);
    args[alen] = '\0';
    char pos[CV_HP_MAX_CHOICES + 1][CV_HP_TEXT];
    int npos = 0;
    for (char *a = args, *next; alen && a; a = next) {
        next = strchr(a, ',');
        if (next) *next++ = '\0';
        if (!*a || strchr(a, '(') || strchr(a, ')'))
            return cv_errf(err, "bad hyperparameter '%s': empty or nested argument (usage: %s)", expr, usage[kind]);
        const char *eq = strchr(a, '=');
        if (eq && strncmp(a, "name=", 5) == 0) {
            if (!is_name(a + 5))
                return cv_errf(err, "bad hyperparameter '%s': name '%s' must be letters, digits and _ "
                               "(at most %d characters)", expr, a + 5, CV_HP_TEXT - 1);
            snprintf(hp->name, sizeof hp->name, "%s", a + 5);
        } else if (eq && strncmp(a, "step=", 5) == 0 && kind == CV_HP_INT) {
            long long st;
            if (!parse_whole_ll(a + 5, &st) || st < 1)
                return cv_errf(err, "bad hyperparameter '%s': step must be an integer >= 1", expr);
            hp->step = (double)st;
        } else if (!eq && strcmp(a, "log") == 0 && kind == CV_HP_FLOAT) {
            hp->log = true;
        } else if (eq) {
            return cv_errf(err, "bad hyperparameter '%s': unknown argument '%s' (usage: %s)", expr, a, usage[kind]);
        } else {
            if (npos == CV_HP_MAX_CHOICES + 1 || strlen(a) >= CV_HP_TEXT)
                return cv_errf(err, "bad hyperparameter '%s': at most %d values of at most %d characters", expr,
                               CV_HP_MAX_CHOICES, CV_HP_TEXT - 1);
            snprintf(pos[npos++], CV_HP_TEXT, "%s", a);
        }
    }

    switch (hp->kind) {
    case CV_HP_INT: {
        long long lo, hi;
        if (npos != 2 || !parse_whole_ll(pos[0], &lo) || !parse_whole_ll(pos[1], &hi))
            return cv_errf(err, "bad hyperparameter '%s': hp.int needs integer lo,hi (usage: %s)", expr, usage[kind]);
        if (lo > hi) return cv_errf(err, "bad hyperparameter '%s': lo > hi", expr);
        if (llabs(lo) > (1LL << 52) || llabs(hi) > (1LL << 52))
            return cv_errf(err, "bad hyperparameter '%s': bounds beyond 2^52", expr);
        hp->lo = (double)lo, hp->hi = (double)hi;
        return 0;
    }
    case CV_HP_FLOAT:
        if (npos != 2 || !parse_whole_double(pos[0], &hp->lo) || !parse_whole_double(pos[1], &hp->hi))
            return cv_errf(err, "bad hyperparameter '%s': hp.float needs numbers lo,hi (usage: %s)", expr, usage[kind]);
        if (hp->lo > hp->hi) return cv_errf(err, "bad hyperparameter '%s': lo > hi", expr);
        if (hp->log && hp->lo <= 0)
            return cv_errf(err, "bad hyperparameter '%s': log sampling needs lo > 0", expr);
        return 0;
    case CV_HP_CHOICE:
        if (npos < 1 || npos > CV_HP_MAX_CHOICES)
            return cv_errf(err, "bad hyperparameter '%s': hp.choice needs 1 to %d values", expr, CV_HP_MAX_CHOICES);
        for (int i = 0; i < npos; i++) {
            for (int j = 0; j < i; j++)
                if (strcmp(pos[i], pos[j]) == 0)
                    return cv_errf(err, "bad hyperparameter '%s': '%s' is listed twice", expr, pos[i]);
            memcpy(hp->choices[i], pos[i], CV_HP_TEXT);
        }
        hp->n_choices = npos;
        hp->hi = npos - 1;
        return 0;
    case CV_HP_BOOL:
        if (npos)
            return cv_errf(err, "bad hyperparameter '%s': hp.bool takes no values (usage: %s)", expr, usage[kind]);
        hp->hi = 1;
        return 0;
    }
    return -1;
}

void cv_hp_value_text(const cv_hp *hp, double v, char *buf, size_t size)
{
    switch (hp->kind) {
    case CV_HP_INT: snprintf(buf, size, "%lld", (long long)llround(v)); return;
    case CV_HP_FLOAT:
        /* short when that stays inside [lo, hi], exact otherwise */
        snprintf(buf, size, "%.6g", v);
        if (strtod(buf, NULL) < hp->lo || strtod(buf, NULL) > hp->hi) snprintf(buf, size, "%.17g", v);
        return;
    case CV_HP_CHOICE: snprintf(buf, size, "%s", hp->choices[(int)v]); return;
    case CV_HP_BOOL: snprintf(buf, size, "%s", v != 0 ? "true" : "false"); return;
    }
}

void cv_hp_describe(const cv_hp *hp, char *buf, size_t size)
{
    switch (hp->kind) {
    case CV_HP_INT:
        snprintf(buf, size, "hp.int(%.0f,%.0f,step=%.0f)", hp->lo, hp->hi, hp->step);
        return;
    case CV_HP_FLOAT: snprintf(buf, size, "hp.float(%g,%g%s)", hp->lo, hp->hi, hp->log ? ",log" : ""); return;
    case CV_HP_CHOICE:
        snprintf(buf, size, "hp.choice(");
        for (int i = 0; i < hp->n_choices; i++)
            snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? "," : "", hp->choices[i]);
        snprintf(buf + strlen(buf), size - strlen(buf), ")");
        return;
    case CV_HP_BOOL: snprintf(buf, size, "hp.bool()"); return;
    }
}
