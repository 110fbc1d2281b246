/* convoy visualize: PNG grids of a checkpoint's first conv filters and of one sample's feature
 * maps through every conv layer. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "convoy/checkpoint.h"
#include "convoy/confusion.h"
#include "convoy/data.h"
#include "convoy/train.h"
#include "convoy/visualize.h"

/* "sample 3: class 1 cross, predicted 1 cross (p 0.9975)": the names from the data, else from
 * the checkpoint */
static void describe_sample(cv_net *net, const char *ckpt, const cv_dataset *ds, long index, const float *x)
{
    int K;
    cv_err err;
    if (cv_confusion_classes(cv_net_spec(net), &K, &err)) return; /* not a classifier */
    cv_data_info info;
    char *const *names = cli_class_names(ckpt, ds, K, &info);
    const int64_t id = index;
    const float *y = cv_net_forward(net, x, 1, false, 0, 0, &id);
    const int out = cv_net_outputs(net);
    float prob[4096];
    if (out > 4096) return;
    cv_loss_probabilities(&cv_net_spec(net)->loss, y, 1, out, prob);
    int best = 0;
    for (int k = 1; k < out; k++) best = prob[k] > prob[best] ? k : best;
    if (out == 1) best = prob[0] >= 0.5f;
    const float p = out == 1 ? (best ? prob[0] : 1.0f - prob[0]) : prob[best];
    printf("sample %ld:", index);
    if (ds->has_labels) printf(" class %d%s%s,", ds->labels[index], names ? " " : "", names ? names[ds->labels[index]] : "");
    printf(" predicted %d%s%s (p %.4f)\n", best, names ? " " : "", names ? names[best] : "", (double)p);
    cv_data_info_free(&info);
}

/* The pictures cv_visualize writes into dir (filters.png, input.png, features-LL.png), checked
 * against the inputs before any is written. */
static int check_pictures(const cv_dist *d, const char *dir, const cv_model_spec *spec, const char *ckpt,
                          const char *data)
{
    const cv_path_role ins[] = {{"CHECKPOINT", ckpt}, {"--data", data}};
    char path[4200];
    int rc = CLI_OK;
    for (int i = -2; rc == CLI_OK && i < spec->n_layers; i++) {
        if (i >= 0 && spec->layers[i].kind != CV_LAYER_CONV2D) continue;
        if (i < 0) snprintf(path, sizeof path, "%s/%s", dir, i == -2 ? "filters.png" : "input.png");
        else snprintf(path, sizeof path, "%s/features-%02d.png", dir, i);
        const cv_path_role out[] = {{"--out's", path}};
        rc = cli_check_outputs(d, CLI_ROLES(out), CLI_ROLES(ins));
    }
    return rc;
}

int cmd_visualize(const cv_dist *d, int argc, char **argv)
{
    const char *data = NULL, *out = NULL, *sample = "0";
    const cli_flag flags[] = {
        {"data", "F.h5", "image dataset (N, H, W, C) the sample comes from (required)", &data, NULL},
        {"out", "DIR", "directory for filters.png, input.png, features-LL.png (created if missing)", &out, NULL},
        {"sample", "I", "row of --data whose feature maps are drawn (default 0)", &sample, NULL},
    };
    const cli_command c = {"visualize", "CHECKPOINT",
                           "Draws the first conv layer's filters and one sample's feature maps in every conv "
                           "layer as PNG grids.",
                           flags, (int)(sizeof flags / sizeof flags[0]), 1, 1};
    const char *pos[1];
    int npos, rc = cli_parse(&c, argc, argv, pos, &npos);
    if (rc) return rc < 0 ? CLI_OK : CLI_BAD_INPUT;
    if (!data || !out) return cli_usage_fail(d, "visualize: --data F.h5 and --out DIR are required");
    long index;
    if (cli_int("--sample", sample, 0, 0x7fffffffL, &index)) return CLI_BAD_INPUT;
    if (d->rank != 0) return CLI_OK; /* one writer */

    cv_err err;
    cv_normalizer nz = {0};
    cv_dataset ds = {0};
    cv_net *net = cv_checkpoint_load(pos[0], 1, &nz, &err);
    float *x = NULL;
    if (!net) return cli_fail(d, "%s", err.msg);
    const cv_model_spec *spec = cv_net_spec(net);
    bool has_conv = false;
    for (int i = 1; i < spec->n_layers; i++) has_conv |= spec->layers[i].kind == CV_LAYER_CONV2D;
    char shape[48];
    if (!has_conv) {
        rc = cli_fail(d, "%s: the model has no conv2d layer (visualize draws conv filters and feature maps)", pos[0]);
    } else if ((rc = check_pictures(d, out, spec, pos[0], data))) { /* said so: an output is an input */
    } else if (cv_dataset_open_stream(&ds, data, &err)) {
        rc = cli_fail(d, "%s", err.msg);
    } else if (ds.shape.rank != 3) {
        rc = cli_fail(d, "%s:/x: samples are %s vectors, not images (H, W, C)", data,
                      cv_shape_str(ds.shape, shape, sizeof shape));
    } else if (cv_check_data(spec, &ds, &err)) {
        rc = cli_fail(d, "%s", err.msg);
    } else if (index >= ds.n) {
        rc = cli_fail(d, "--sample: %ld is outside [0, %lld] (%s has %lld samples)", index, (long long)ds.n - 1, data,
                      (long long)ds.n);
    } else if (!(x = cv_malloc(sizeof(float) * (size_t)cv_shape_size(ds.shape), "sample", &err)) ||
               cv_dataset_fetch(&ds, &nz, &(int64_t){index}, 1, x, &err)) {
        rc = cli_fail(d, "%s", err.msg);
    } else {
        cv_visual *v = cv_calloc(CV_MAX_LAYERS + 2, sizeof *v, "visualize", &err);
        int n = 0;
        if (!v || cv_visualize(net, x, out, v, CV_MAX_LAYERS + 2, &n, &err)) rc = cli_fail(d, "%s", err.msg);
        for (int i = 0; rc == CLI_OK && i < n; i++) {
            const cv_layer_spec *l = &spec->layers[v[i].layer];
            if (i == 0)
                printf("wrote %s: layer %d conv2d, %d filters %dx%dx%d (%d tiles of %dx%d px, %d per row)\n", v[i].path,
                       v[i].layer, l->filters, l->kernel[0], l->kernel[1], l->in.d[2], v[i].tiles, v[i].tile_w, v[i].tile_h,
                       v[i].cols);
            else if (v[i].layer == 0)
                printf("wrote %s: sample %ld of %s\n", v[i].path, index, data);
            else
                printf("wrote %s: layer %d conv2d, %d feature maps %dx%d (%d per row)\n", v[i].path, v[i].layer,
                       v[i].tiles, l->out.d[1], l->out.d[0], v[i].cols);
        }
        if (rc == CLI_OK && n > 0)
            printf("labelled: beside each picture its .svg (%s, ...): the layer, each tile's filter or channel and "
                   "value range, the shades' legend\n",
                   v[0].svg);
        if (rc == CLI_OK) describe_sample(net, pos[0], &ds, index, x);
        free(v);
    }
    free(x);
    cv_dataset_free(&ds);
    cv_normalizer_free(&nz);
    cv_net_free(net);
    return rc;
}
