/* Parameter totals and the Keras-style table behind `convoy summary`. Rows are named as Keras
 * names them (conv2d, conv2d_1, max_pooling2d, ...) so the table can be compared line by line
 * with model.summary() of the same model in Keras 2. */
#include "convoy/model.h"

#include <stdio.h>
#include <string.h>

int64_t cv_model_param_count(const cv_model_spec *spec)
{
    int64_t n = 0;
    for (int i = 0; i < spec->n_layers; i++) n += cv_layer_param_count(&spec->layers[i]);
    return n;
}

/* 225034 -> "225,034" */
static const char *thousands(int64_t n, char *buf, size_t size)
{
    char digits[32];
    const int len = snprintf(digits, sizeof digits, "%lld", (long long)(n < 0 ? -n : n));
    size_t o = 0;
    if (n < 0 && o + 1 < size) buf[o++] = '-';
    for (int i = 0; i < len && o + 1 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0 && o + 2 < size) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

static void rule(FILE *f, char c, int width)
{
    for (int i = 0; i < width; i++) fputc(c, f);
    fputc('\n', f);
}

void cv_model_summary(const cv_model_spec *spec, void *file)
{
    FILE *f = file;
    char names[CV_MAX_LAYERS][96], shapes[CV_MAX_LAYERS][48], num[32];
    int seen[CV_LAYER_KIND_COUNT] = {0};
    int name_w = 28; /* Keras's column widths, widened for long names */
    for (int i = 1; i < spec->n_layers; i++) {
        const cv_layer_spec *l = &spec->layers[i];
        /* Keras's layer names: snake case for the instance, the class name in parentheses */
        const unsigned k = (unsigned)l->kind < CV_LAYER_KIND_COUNT ? l->kind : CV_LAYER_INPUT;
        const cv_layer_kind_desc *kd = cv_layer_kinds[k];
        char base[64];
        if (seen[k]++)
            snprintf(base, sizeof base, "%s_%d", kd->keras_name, seen[k] - 1);
        else
            snprintf(base, sizeof base, "%s", kd->keras_name);
        snprintf(names[i], sizeof names[i], "%s (%s)", base, kd->keras_class);
        if (l->out.rank == 3)
            snprintf(shapes[i], sizeof shapes[i], "(None, %d, %d, %d)", l->out.d[0],
                     l->out.d[1], l->out.d[2]);
        else
            snprintf(shapes[i], sizeof shapes[i], "(None, %d)", l->out.d[0]);
        const int len = (int)strlen(names[i]) + 2;
        if (len > name_w) name_w = len;
    }
    const int shape_w = 26, width = name_w + shape_w + 11;

    int64_t total = 0, frozen = 0;
    fprintf(f, "Model: \"sequential\"\n");
    rule(f, '_', width);
    fprintf(f, " %-*s%-*s%s\n", name_w, "Layer (type)", shape_w, "Output Shape", "Param #");
    rule(f, '=', width);
    for (int i = 1; i < spec->n_layers; i++) {
        /* Keras's count: a batchnorm's moving statistics are parameters too, never trained */
        const int64_t learnt = cv_layer_param_count(&spec->layers[i]), state = cv_layer_state_count(&spec->layers[i]);
        const int64_t p = learnt + state;
        total += p;
        frozen += state + (spec->layers[i].trainable ? 0 : learnt);
        fprintf(f, " %-*s%-*s%s\n", name_w, names[i], shape_w, shapes[i],
                thousands(p, num, sizeof num));
        if (i + 1 < spec->n_layers) fputc('\n', f);
    }
    rule(f, '=', width);
    fprintf(f, "Total params: %s\n", thousands(total, num, sizeof num));
    fprintf(f, "Trainable params: %s\n", thousands(total - frozen, num, sizeof num));
    fprintf(f, "Non-trainable params: %s\n", thousands(frozen, num, sizeof num));
    rule(f, '_', width);
    if (spec->n_hp) { /* keras-tuner's search_space_summary(); the table above shows the defaults */
        fprintf(f, "Search space (%d hyperparameter%s; the table shows each one's default):\n", spec->n_hp,
                spec->n_hp > 1 ? "s" : "");
        for (int i = 0; i < spec->n_hp; i++) {
            char what[CV_HP_MAX_CHOICES * CV_HP_TEXT + 32];
            cv_hp_describe(&spec->hp[i], what, sizeof what);
            fprintf(f, "  %-16s line %-4d %-22s %s\n", spec->hp[i].name, spec->hp[i].line, spec->hp[i].key, what);
        }
    }
}
