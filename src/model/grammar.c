/* The model file's grammar as data (convoy/grammar.h): every keyword the parser knows, the keys
 * its line takes and what each key's value must be, read from the parser's tables
 * (parse_keyword_list, parse_find_keyword, parse_keys) rather than written out a second time. */
#include "convoy/grammar.h"

#include <stdio.h>
#include <string.h>

#include "convoy/layers.h"
#include "convoy/optim.h"
#include "model/parse-impl.h"

static const char *const role_names[S_ROLE_COUNT] = {"layer", "compile", "fit", "augment", "base"};
static const char *const range_names[] = {"", " > 0", " >= 0", " in [0, 1)", " in (0, 1)"};

/* the keywords in the parser's order, split from its comma list */
static int keywords(char words[][32], int max)
{
    char list[1024];
    parse_keyword_list(list, sizeof list);
    int n = 0;
    for (char *s = list; *s && n < max;) {
        const size_t len = strcspn(s, ",");
        snprintf(words[n++], sizeof words[0], "%.*s", (int)len, s);
        s += len;
        while (*s == ',' || *s == ' ') s++;
    }
    return n;
}

static void describe_value(const key_desc *k, char *buf, size_t size)
{
    static const char *const types[] = {
        [V_INT] = "an integer", [V_SEED] = "an integer", [V_BATCH] = "an integer",
        [V_FLOAT] = "a number", [V_BOOL] = "true | false", [V_SHAPE] = "H,W,C or D (positive integers)",
        [V_KERNEL] = "K or KH,KW, each", [V_PADDING] = "valid | same, or P, PH,PW or T,B,L,R (integers >= 0)",
        [V_PAIR] = "LO,HI", [V_SPAN] = "a number, or LO,HI", [V_PATH] = "a file name"};
    size_t len = 0;
    if (k->type == V_CHOICE || k->type == V_CHOICES) {
        len += (size_t)snprintf(buf, size, "%s", k->type == V_CHOICES ? "a comma list of " : "");
        for (int i = 0; i < k->n_choices && len < size; i++)
            len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? " | " : "", k->choice(i));
    } else {
        const bool number = k->type == V_INT || k->type == V_SEED || k->type == V_BATCH || k->type == V_FLOAT ||
                            k->type == V_KERNEL;
        len += (size_t)snprintf(buf, size, "%s%s%s", types[k->type], number ? range_names[k->range] : "",
                                k->type == V_BATCH ? ", or all" : "");
    }
    for (int o = 0, first = 1; k->optims && o < CV_OPT_COUNT && len < size; o++)
        if (k->optims & OPT(o)) {
            len += (size_t)snprintf(buf + len, size - len, "%s%s", first ? "; for " : ", ",
                                    cv_optim_name((cv_optim_kind)o));
            first = 0;
        }
}

int cv_grammar_count(void)
{
    char words[CV_LAYER_KIND_COUNT + 16][32];
    return keywords(words, CV_LAYER_KIND_COUNT + 16);
}

int cv_grammar_statement_at(int i, cv_grammar_statement *st)
{
    char words[CV_LAYER_KIND_COUNT + 16][32];
    const int n = keywords(words, CV_LAYER_KIND_COUNT + 16);
    keyword_desc kw;
    if (i < 0 || i >= n || !parse_find_keyword(words[i], &kw)) return -1;
    memset(st, 0, sizeof *st);
    st->keyword = kw.name;
    st->role = role_names[kw.role];
    st->keras_class = kw.role == S_LAYER ? cv_layer_kinds[kw.kind]->keras_class : NULL;
    for (int k = 0; k < K_COUNT && st->nkeys < CV_GRAMMAR_MAX_KEYS; k++) {
        if (!(kw.allowed & B(k))) continue;
        cv_grammar_key *g = &st->keys[st->nkeys++];
        g->name = parse_keys[k].name;
        g->alias = parse_keys[k].alias;
        g->required = (kw.required & B(k)) != 0;
        describe_value(&parse_keys[k], g->value, sizeof g->value);
        if (kw.bare & B(k)) st->bare_key = parse_keys[k].name;
    }
    return 0;
}
