/* `convoy predict`: a checkpoint's outputs for a dataset file (its /y not needed) or for image
 * files, each prepared exactly as the training images were (the size, channels and filter the
 * checkpoint records from `convert images`, else the model's input shape). A classifier's
 * answer is a CSV of source, class, class name and probability (its top K classes with
 * --top-k), on stdout or in --out F.csv; --out F.h5 keeps every output in /predictions. */
#define _DEFAULT_SOURCE /* fsync, getpid */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "convoy/checkpoint.h"
#include "convoy/confusion.h"
#include "convoy/data.h"
#include "convoy/imageset.h"
#include "convoy/train.h"

/* The image files to predict: the command line's (a view of argv), or those found under
 * --images (owned: found) */
typedef struct {
    const char *const *path;
    int64_t n;
    char **found;
} paths;

static void free_paths(paths *p)
{
    for (int64_t i = 0; p->found && i < p->n; i++) free(p->found[i]);
    free(p->found);
}

/* One CSV field, in double quotes (doubled inside) when quote or when it holds a comma, a quote
 * or a newline. */
static void csv_field(FILE *f, const char *s, bool quote)
{
    if (!quote && !strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) fprintf(f, *s == '"' ? "\"\"" : "%c", *s);
    fputc('"', f);
}

/* The images as a dataset of uint8 samples shaped as the model's input. */
static int images_dataset(const paths *files, const cv_model_spec *spec, const cv_data_info *info, cv_dataset *ds,
                          cv_err *err)
{
    memset(ds, 0, sizeof *ds);
    const cv_shape in = spec->layers[0].shape;
    if (in.rank != 3 || (in.d[2] != 1 && in.d[2] != 3))
        return cv_errf(err, "the model's input is not an image (H,W,1) or (H,W,3): predict it from a dataset file with --data");
    if (info->image_h && (info->image_h != in.d[0] || info->image_w != in.d[1] || info->image_c != in.d[2]))
        return cv_errf(err, "the checkpoint's images were %dx%dx%d but its input is %dx%dx%d", info->image_h,
                       info->image_w, info->image_c, in.d[0], in.d[1], in.d[2]);
    const int64_t size = cv_shape_size(in);
    uint8_t *x = cv_malloc((size_t)(files->n * size), "images", err);
    if (!x) return -1;
    for (int64_t i = 0; i < files->n; i++) {
        cv_image img;
        const bool draft = cv_imageset_filter_draft(info->image_filter); /* as the training images were decoded */
        if (cv_image_read(files->path[i], &img, draft ? in.d[1] : 0, draft ? in.d[0] : 0, err) ||
            cv_image_prepare(&img, in.d[1], in.d[0], in.d[2], err)) {
            if (!strstr(err->msg, files->path[i])) cv_errf(err, "%s: %s", files->path[i], err->msg);
            cv_image_free(&img);
            free(x);
            return -1;
        }
        memcpy(x + i * size, img.px, (size_t)size);
        cv_image_free(&img);
    }
    snprintf(ds->path, sizeof ds->path, "%s", files->n == 1 ? files->path[0] : "the images");
    ds->n = files->n;
    ds->shape = in;
    ds->xtype = CV_DTYPE_U8;
    ds->x = x;
    return 0;
}

/* One CSV row per source and class, the top k classes first. */
static void write_csv(FILE *f, const float *pred, int64_t n, int K, int top_k, const paths *files,
                      const cv_data_info *info)
{
    fprintf(f, "source,class,class_name,probability\n");
    const int classes = K == 1 ? 2 : K;
    if (top_k > classes) top_k = classes;
    bool *taken = calloc((size_t)classes, sizeof *taken);
    for (int64_t i = 0; taken && i < n; i++) {
        const float *p = pred + (size_t)i * K;
        memset(taken, 0, sizeof *taken * (size_t)classes);
        for (int r = 0; r < top_k; r++) {
            int best = 0;
            float bp = -1.0f;
            for (int c = 0; c < classes; c++) {
                const float q = K == 1 ? (c == 1 ? p[0] : 1.0f - p[0]) : p[c];
                if (!taken[c] && q > bp) best = c, bp = q;
            }
            taken[best] = true;
            char num[32];
            snprintf(num, sizeof num, "%d", best);
            const char *name = info->n_classes == classes ? info->class_names[best] : num;
            if (files)
                csv_field(f, files->path[i], true);
            else
                fprintf(f, "%lld", (long long)i);
            fprintf(f, ",%d,", best);
            csv_field(f, name, false);
            fprintf(f, ",%.6f\n", (double)bp);
        }
    }
    free(taken);
}

static bool ends_with(const char *s, const char *tail)
{
    const size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

int cmd_predict(const cv_dist *d, int argc, char **argv)
{
    const char *data = NULL, *out = NULL, *threads = NULL, *images = NULL, *top = NULL, *precision = NULL;
    const cli_flag flags[] = {
        {"data", "F.h5", "inputs: a dataset file (its /y, if any, is not needed)", &data, NULL},
        {"images", "DIR", "inputs: every .png/.jpg/.jpeg image under DIR, in sorted order", &images, NULL},
        {"out", "F.csv|F.h5", "the classes as CSV (default: stdout), or every output in F.h5's /predictions", &out, NULL},
        {"top-k", "K", "CSV: each source's K most probable classes (default 1)", &top, NULL},
        {"threads", "T", "OpenMP threads", &threads, NULL},
        {"precision", "P", "fp32 (default) or bf16 products (needs AVX512_BF16)", &precision, NULL},
    };
    const cli_command c = {"predict", "CHECKPOINT [IMAGE...]",
                           "Writes CHECKPOINT's predictions for a dataset (--data), image files or a folder of them.",
                           flags, NFLAGS(flags), 1, 1 << 20};
    const char **pos = malloc(sizeof *pos * (size_t)(argc + 1));
    int npos, rc = pos ? cli_parse(&c, argc, argv, pos, &npos) : 1;
    if (rc) {
        free(pos);
        return rc < 0 ? CLI_OK : CLI_BAD_INPUT;
    }
    long top_k = 1;
    const int sources = (data != NULL) + (images != NULL) + (npos > 1);
    if (sources != 1)
        rc = cli_usage_fail(d, "predict: give one input: --data F.h5, image files, or --images DIR");
    else if (top && cli_int("--top-k", top, 1, 4096, &top_k))
        rc = CLI_BAD_INPUT;
    cv_precision prec = CV_PRECISION_FP32;
    if (rc == 0 && (cli_threads(threads) || cli_precision(precision, &prec))) rc = CLI_BAD_INPUT;
    rc = cli_startup_agree(d, rc); /* the other ranks stop here: no collective after it */
    if (rc || d->rank != 0) { /* one writer; inference of a file is cheap */
        free(pos);
        return rc;
    }
    cv_err err;
    cv_normalizer nz = {0};
    cv_dataset ds = {0};
    cv_data_info info = {0};
    paths files = {0};
    float *pred = NULL;
    cv_net *net = cv_checkpoint_load(pos[0], CV_MICRO_BATCH, &nz, &err);
    if (!net || cv_net_fold_batchnorm(net, &err) < 0 || cv_checkpoint_data_info(pos[0], &info, &err)) {
        rc = cli_fail(d, "%s", err.msg);
        goto done;
    }
    cv_net_set_precision(net, prec);
    const cv_model_spec *spec = cv_net_spec(net);
    files.path = pos + 1, files.n = npos - 1;
    if (images) {
        if (cv_image_files(images, &files.found, &files.n, &err)) rc = cli_fail(d, "%s", err.msg);
        files.path = (const char *const *)files.found;
    }
    if (rc == 0 && images && files.n == 0) rc = cli_fail(d, "%s: no .png, .jpg or .jpeg images in it", images);
    cv_path_role *ins = rc == 0 && out ? cv_malloc(sizeof *ins * (size_t)(files.n + 2), "paths", &err) : NULL;
    if (rc == 0 && out && !ins) rc = cli_fail(d, "%s", err.msg);
    if (ins) { /* never write over an input (same file, any name) */
        const cv_path_role outs[] = {{"--out", out}};
        ins[0] = (cv_path_role){"CHECKPOINT", pos[0]}, ins[1] = (cv_path_role){"--data", data};
        for (int64_t i = 0; i < files.n; i++) ins[i + 2] = (cv_path_role){"IMAGE", files.path[i]};
        rc = cli_check_outputs(d, CLI_ROLES(outs), ins, (int)(files.n + 2));
        free(ins);
    }
    if (rc == 0 && (data ? cv_dataset_load_inputs(&ds, data, &err) || cv_check_data(spec, &ds, &err)
                         : images_dataset(&files, spec, &info, &ds, &err)))
        rc = cli_fail(d, "%s", err.msg);
    if (rc == 0 && nz.mode == CV_NORM_STANDARDIZE && nz.dim != cv_shape_size(ds.shape))
        rc = cli_fail(d, "%s: normaliser has %lld features, the data %lld", pos[0], (long long)nz.dim,
                      (long long)cv_shape_size(ds.shape));
    const int K = net ? cv_net_outputs(net) : 0;
    if (rc == 0 && !(pred = cv_malloc(sizeof(float) * (size_t)ds.n * K, "predictions", &err)))
        rc = cli_fail(d, "%s", err.msg);
    if (rc == 0 && cv_predict(net, &ds, &nz, pred, &err)) rc = cli_fail(d, "%s", err.msg);
    if (rc) goto done;
    int classes;
    const bool classifier = cv_confusion_classes(spec, &classes, &err) == 0;
    if (out && ends_with(out, ".h5")) {
        if (cv_predictions_write(out, pred, ds.n, K, &err)) rc = cli_fail(d, "%s", err.msg);
        else printf("wrote %s: /predictions (%lld, %d)\n", out, (long long)ds.n, K);
    } else if (!classifier) {
        rc = cli_fail(d, "predict: %s is not a classifier; write its outputs with --out F.h5", pos[0]);
    } else {
        cv_loss_probabilities(&spec->loss, pred, ds.n, K, pred); /* logits (from_logits) to probabilities */
        /* a file: written whole to a temporary name, then renamed (never half a CSV); a device
         * (/dev/null) straight, as stdout: a rename would replace the device itself */
        cv_err oe;
        const int kind = out ? cv_output_kind(out, &oe) : 0;
        const bool renamed = out && kind == 0;
        char tmp[4096] = "";
        if (renamed) snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid());
        FILE *f = kind < 0 ? NULL : renamed ? fopen(tmp, "w") : out ? fopen(out, "w") : stdout;
        if (kind < 0) {
            rc = cli_fail(d, "%s", oe.msg);
        } else if (!f) {
            rc = cli_fail(d, "%s: cannot create (%s)", out, strerror(errno));
        } else {
            write_csv(f, pred, ds.n, K, (int)top_k, data ? NULL : &files, &info);
            const int e = ferror(f) || (renamed ? fflush(f) != 0 || fsync(fileno(f)) != 0 : fflush(f) != 0) ? errno : 0;
            if (out && (fclose(f) != 0 || e || (renamed && rename(tmp, out) != 0))) {
                rc = cli_fail(d, "%s: cannot write (%s)", out, strerror(e ? e : errno));
                if (renamed) unlink(tmp);
            } else if (out) {
                printf("wrote %s: %lld row%s\n", out, (long long)ds.n, ds.n == 1 ? "" : "s");
            }
        }
    }
done:
    free(pred);
    free_paths(&files);
    cv_data_info_free(&info);
    cv_dataset_free(&ds);
    cv_normalizer_free(&nz);
    cv_net_free(net);
    free(pos);
    return rc;
}
