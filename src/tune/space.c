/* The search space: sampling each hp site as a pure function of (seed, configuration, site)
 * and writing sampled values into the model text, which the normal parser then validates. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/rng.h"
#include "convoy/tune.h"

double cv_hp_sample(const cv_hp *hp, uint64_t seed, int64_t config, int h)
{
    /* 53 random bits: u uniform in [0, 1) */
    const double u = (double)(cv_key(seed, CV_STREAM_TUNE, (uint64_t)config, (uint64_t)h) >> 11) * 0x1p-53;
    switch (hp->kind) {
    case CV_HP_INT: {
        const double n = floor((hp->hi - hp->lo) / hp->step) + 1;
        return hp->lo + floor(u * n) * hp->step;
    }
    case CV_HP_FLOAT: {
        const double x = hp->log ? exp(log(hp->lo) + u * (log(hp->hi) - log(hp->lo))) : hp->lo + u * (hp->hi - hp->lo);
        return x < hp->lo ? hp->lo : x > hp->hi ? hp->hi : x; /* exp/log rounding at the ends */
    }
    case CV_HP_CHOICE: return floor(u * hp->n_choices);
    case CV_HP_BOOL: return u < 0.5 ? 0.0 : 1.0;
    }
    return 0.0;
}

char *cv_tune_substitute(const cv_model_spec *space, const double *values, cv_err *err)
{
    const size_t len = strlen(space->text);
    char vals[CV_MAX_HP][64];
    size_t size = len + 1;
    for (int h = 0; h < space->n_hp; h++) {
        cv_hp_value_text(&space->hp[h], values[h], vals[h], sizeof vals[h]);
        size += strlen(vals[h]);
    }
    char *out = cv_malloc(size, "trial model text", err);
    if (!out) return NULL;
    /* sites are in file order: copy the text between them */
    size_t o = 0;
    int64_t at = 0;
    for (int h = 0; h < space->n_hp; h++) {
        const cv_hp *hp = &space->hp[h];
        memcpy(out + o, space->text + at, (size_t)(hp->off - at));
        o += (size_t)(hp->off - at);
        memcpy(out + o, vals[h], strlen(vals[h]));
        o += strlen(vals[h]);
        at = hp->off + hp->len;
    }
    memcpy(out + o, space->text + at, len - (size_t)at + 1);
    return out;
}

int cv_tune_trial_spec(const cv_model_spec *space, const double *values, cv_model_spec *out, cv_err *err)
{
    char *text = cv_tune_substitute(space, values, err);
    if (!text) return -1;
    const int rc = cv_model_parse(out, text, space->file, err);
    free(text);
    return rc;
}

int cv_hyperband_plan(int max_epochs, int factor, cv_hb_rung *rungs, int max)
{
    int s_max = 0;
    for (long p = factor; p <= max_epochs; p *= factor) s_max++;
    int n = 0;
    for (int s = s_max; s >= 0; s--) {
        double eta_s = pow(factor, s);
        const int configs = (int)ceil((double)(s_max + 1) / (s + 1) * eta_s - 1e-9);
        for (int i = 0; i <= s && n < max; i++) {
            const int keep = (int)floor(configs / pow(factor, i) + 1e-9);
            const int epochs = (int)lround(max_epochs * pow(factor, i - s));
            rungs[n++] = (cv_hb_rung){s, i, keep, epochs < 1 ? 1 : epochs};
        }
    }
    return n;
}
