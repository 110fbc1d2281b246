/* Transfer learning in the model file: `base checkpoint=F upto=N` takes the first N layers of a
 * saved model, `fit fine_tune_last=K` unfreezes the last K of them that have weights, and a
 * checkpoint of such a model saves its text with the base written out, so it stands alone. */
#define _GNU_SOURCE /* open_memstream */
#include "convoy/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checkpoints convoy writes hold no base line, but a hand-made one could name itself. */
enum { MAX_BASE_DEPTH = 4 };

int cv_model_base_take(cv_model_spec *spec, const char *path, int upto, int trainable, const cv_base_reader *rd,
                       cv_err *err)
{
    cv_model_spec saved;
    cv_err inner;
    if (!rd || !rd->read)
        return cv_errf(err, "base checkpoint: %s: this parse reads no checkpoints (parse with cv_model_parse)", path);
    if (rd->depth == MAX_BASE_DEPTH)
        return cv_errf(err, "base checkpoint: %s: bases nested more than %d deep (does a checkpoint's "
                       "model name itself?)", path, MAX_BASE_DEPTH);
    if (rd->read(path, rd->depth + 1, &saved, &inner)) return cv_errf(err, "base checkpoint: %s", inner.msg);
    const int have = saved.n_layers - 1;
    int rc = 0;
    if (upto > have)
        rc = cv_errf(err, "upto=%d is out of range: the model in %s has %d layer%s after its input "
                     "(upto counts them as Keras's base_model.layers[:N] does)", upto, path, have,
                     have == 1 ? "" : "s");
    if (rc == 0) {
        const int n = upto ? upto : have;
        snprintf(spec->base.checkpoint, sizeof spec->base.checkpoint, "%s", path);
        spec->base.upto = n;
        spec->base.trainable = 0;
        for (int i = 0; i <= n; i++) {
            cv_layer_spec *l = &spec->layers[i];
            *l = saved.layers[i];
            l->line = spec->base.line; /* what the user wrote is the base line */
            if (trainable >= 0 && cv_layer_has_weights(l)) l->trainable = trainable;
            if (l->trainable) spec->base.trainable |= UINT64_C(1) << i;
        }
        spec->n_layers = n + 1;
    }
    cv_model_spec_free(&saved);
    return rc;
}

int cv_model_fine_tune(cv_model_spec *spec, int k, cv_err *err)
{
    const cv_base_config *b = &spec->base;
    if (!b->upto) return cv_errf(err, "fine-tuning needs a `base checkpoint=F.h5 upto=N` line");
    int weighted = 0;
    for (int i = 1; i <= b->upto; i++) weighted += cv_layer_has_weights(&spec->layers[i]);
    if (k > weighted)
        return cv_errf(err, "fine_tune_last=%d but the base (upto=%d) has only %d layer%s with "
                       "weights", k, b->upto, weighted, weighted == 1 ? "" : "s");
    int left = k;
    for (int i = b->upto; i >= 1; i--) {
        cv_layer_spec *l = &spec->layers[i];
        if (!cv_layer_has_weights(l)) continue;
        const bool in_last_k = left-- > 0; /* a layer already trainable counts among the K too */
        l->trainable = ((b->trainable >> i) & 1) || in_last_k;
    }
    spec->base.fine_tune_last = k;
    return 0;
}

/* Copies one line of the model text, less the `fine_tune_last=K` token when `strip` (that key
 * means nothing once the base is written out: the layers carry their trainable flags). */
static void copy_line(FILE *f, const char *line, size_t len, bool strip)
{
    const char *key = NULL;
    if (strip)
        for (const char *p = line; p + 15 <= line + len && *p != '#' && !key; p++)
            if (strncmp(p, "fine_tune_last=", 15) == 0 && (p == line || p[-1] == ' ' || p[-1] == '\t')) key = p;
    if (!key) {
        fwrite(line, 1, len, f);
        return;
    }
    const char *end = key;
    while (end < line + len && *end != ' ' && *end != '\t') end++;
    fwrite(line, 1, (size_t)(key - line), f);
    fwrite(end, 1, (size_t)(line + len - end), f);
}

char *cv_model_saved_text(const cv_model_spec *spec, cv_err *err)
{
    const char *text = spec->text ? spec->text : "";
    const cv_base_config *b = &spec->base;
    char *out = NULL;
    size_t size = 0;
    FILE *f = b->upto ? open_memstream(&out, &size) : NULL;
    if (!b->upto) {
        if (!(out = strdup(text))) cv_errf(err, "out of memory copying the model text");
        return out;
    }
    if (!f) {
        cv_errf(err, "out of memory writing the model text");
        return NULL;
    }
    int line = 1;
    for (const char *p = text; *p; line++) {
        const char *eol = p + strcspn(p, "\r\n"); /* LF, CRLF or a lone CR, as the parser counts lines */
        const size_t len = (size_t)(eol - p) + (eol[0] == '\r' && eol[1] == '\n' ? 2 : eol[0] ? 1 : 0);
        if (line == b->line) {
            fprintf(f, "# base checkpoint=%s upto=%d, written out with its trainable flags:\n",
                    b->checkpoint, b->upto);
            for (int i = 0; i <= b->upto; i++) cv_layer_write_line(f, &spec->layers[i]);
        } else if (line < b->line || line > b->last_line) {
            copy_line(f, p, len, line == b->fine_tune_line);
        }
        p += len;
    }
    if (fclose(f) != 0) {
        free(out);
        cv_errf(err, "out of memory writing the model text");
        return NULL;
    }
    return out;
}
