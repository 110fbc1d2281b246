/* convoy convert: datasets from Fashion-MNIST, IDX pairs, CSV, image folders and CIFAR (the
 * converters are src/data's; this is their flags and messages). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "convoy/data.h"
#include "convoy/files.h"
#include "convoy/imageset.h"
#include "convoy/timer.h"

/* "5,7,9" -> ints in [0, 9]; flag names the option in messages */
static int parse_classes(const char *flag, const char *s, int *out, int max, int *n)
{
    *n = 0;
    for (const char *p = s; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 9 || *n >= max || (*end && *end != ','))
            return cli_usage_fail(NULL, "--%s: bad class list '%s' (class numbers 0-9, comma-separated)", flag, s);
        out[(*n)++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return *n ? 0 : cli_usage_fail(NULL, "--%s: empty class list", flag);
}

/* "H,W" (or "S" for a square) into h, w */
static int parse_size(const char *s, int *h, int *w)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    char *comma = strchr(buf, ',');
    if (comma) *comma = '\0';
    long a, b;
    if (cli_int("--size", buf, 1, CV_IMAGE_MAX_SIDE, &a) || cli_int("--size", comma ? comma + 1 : buf, 1, CV_IMAGE_MAX_SIDE, &b))
        return -1;
    if (a * b > CV_IMAGE_MAX_PIXELS)
        return cli_usage_fail(NULL, "--size %ld,%ld: more than %lld pixels per image", a, b, (long long)CV_IMAGE_MAX_PIXELS);
    *h = (int)a, *w = (int)b;
    return 0;
}

/* convert images: a line of progress on a terminal (files/s), rewritten in place */
typedef struct {
    double t0, last;
} convert_progress;

static void show_progress(void *ctx, int64_t done, int64_t total)
{
    convert_progress *p = ctx;
    const double now = cv_now();
    if (now - p->last < 0.1 && done < total) return;
    p->last = now;
    fprintf(stderr, "\rconverting %lld/%lld images, %.0f images/s ", (long long)done, (long long)total,
            done / (now - p->t0 > 1e-9 ? now - p->t0 : 1e-9));
    if (done == total) fputc('\n', stderr);
}

static int convert_images(const cv_dist *d, const char *dir, const char *out, const char *size, const char *channels,
                          const char *val_split, const char *val_out, const char *seed, bool skip_bad, bool draft)
{
    cv_imageset_opts o = {.seed = 42, .skip_bad = skip_bad, .draft = draft};
    long v = 0;
    if (size && parse_size(size, &o.h, &o.w)) return CLI_BAD_INPUT;
    if (channels && cli_int("--channels", channels, 1, 3, &v)) return CLI_BAD_INPUT;
    if (channels && v == 2) return cli_usage_fail(d, "--channels: 1 (grey) or 3 (RGB), not 2");
    o.channels = (int)v;
    if (seed && cli_int("--seed", seed, 0, LONG_MAX, &v)) return CLI_BAD_INPUT;
    if (seed) o.seed = (uint64_t)v;
    if (val_split) {
        char *end;
        o.val_split = strtod(val_split, &end);
        if (*end || !(o.val_split > 0.0 && o.val_split < 1.0))
            return cli_usage_fail(d, "--val-split: a fraction between 0 and 1, got '%s'", val_split);
    }
    convert_progress p = {cv_now(), 0.0};
    const bool show = d->rank == 0 && isatty(2);
    cv_imageset_report rep;
    cv_err err;
    const double t0 = cv_now();
    if (cv_convert_images(dir, out, val_out, &o, d, show ? show_progress : NULL, &p, &rep, &err))
        return cli_fail(d, "%s", err.msg);
    if (d->rank != 0) return CLI_OK;
    const double secs = cv_now() - t0;
    printf("wrote %s: %lld images of %dx%dx%d in %d classes", out, (long long)rep.written, rep.h, rep.w, rep.channels,
           rep.n_classes);
    if (val_out) printf("; %s: %lld images", val_out, (long long)rep.val_written);
    printf(" (%.1f s, %.0f images/s on %d rank%s)\n", secs, (rep.written + rep.val_written + rep.skipped) / (secs > 0 ? secs : 1),
           d->size, d->size > 1 ? "s" : "");
    if (rep.skipped)
        printf("skipped %lld unreadable file%s (--skip-bad), the first: %s\n", (long long)rep.skipped,
               rep.skipped > 1 ? "s" : "", rep.first_skipped);
    if (rep.ignored)
        printf("ignored %lld file%s: not .png, .jpg or .jpeg, or symlinked folders\n", (long long)rep.ignored,
               rep.ignored > 1 ? "s" : "");
    return CLI_OK;
}

/* fashion-mnist (which 0) and cifar10/100 write DIR/train.h5 and DIR/test.h5: never over one of
 * the files they read (a symlink or hard link in DIR to a source) */
static int check_split_outputs(const cv_dist *d, int which, const char *srcdir, const char *outdir, const char *flag)
{
    char src[8][1024], train[1100], test[1100];
    const int n = cv_convert_sources(which, srcdir, src, 8);
    cv_path_role ins[8];
    for (int i = 0; i < n; i++) ins[i] = (cv_path_role){flag, src[i]};
    snprintf(train, sizeof train, "%s/train.h5", outdir);
    snprintf(test, sizeof test, "%s/test.h5", outdir);
    const cv_path_role outs[] = {{"--out's", train}, {"--out's", test}};
    return cli_check_outputs(d, CLI_ROLES(outs), ins, n);
}

int cmd_convert(const cv_dist *d, int argc, char **argv)
{
    const char *out = NULL, *src = "/usr/share/datasets/fashion-mnist", *positive = NULL,
               *pos_name = "positive", *label = NULL, *classes = NULL, *per_class = NULL, *size = NULL,
               *channels = NULL, *val_split = NULL, *val_out = NULL, *seed = NULL, *separator = NULL;
    bool as_float = false, relabel = false, skip_bad = false, draft = false, no_header = false;
    const cli_flag flags[] = {
        {"out", "PATH", "output directory (fashion-mnist) or file (idx, csv, images)", &out, NULL},
        {"src", "DIR", "fashion-mnist: folder of the IDX .gz files", &src, NULL},
        {"positive", "C,C,..", "fashion-mnist: binary labels, 1 for these classes", &positive, NULL},
        {"positive-name", "NAME", "fashion-mnist: class name of the positives", &pos_name, NULL},
        {"classes", "C,C,..", "fashion-mnist: keep only these classes", &classes, NULL},
        {"per-class", "N", "fashion-mnist: with --classes, the first N training images of each", &per_class, NULL},
        {"relabel", NULL, "fashion-mnist: with --classes, labels become 0.. in the list's order", NULL, &relabel},
        {"label", "COLUMN", "csv: the target column (name or 0-based index); cifar100: fine (default) or coarse", &label, NULL},
        {"float", NULL, "csv: store the target as float (regression) even if integral", NULL, &as_float},
        {"separator", "C", "csv: the field separator: , ; or tab (default: the one the first row has most of)",
         &separator, NULL},
        {"no-header", NULL, "csv: the first row is data (columns named 0, 1, ...)", NULL, &no_header},
        {"size", "H,W", "images: resize every image to H x W (default: the first image's size)", &size, NULL},
        {"channels", "1|3", "images: grey or RGB (default: the first image's)", &channels, NULL},
        {"val-split", "F", "images: put this fraction of each class into --val-out", &val_split, NULL},
        {"val-out", "FILE", "images: the validation file", &val_out, NULL},
        {"seed", "S", "images: which files --val-split takes (default 42)", &seed, NULL},
        {"skip-bad", NULL, "images: skip unreadable files (counted) instead of stopping", NULL, &skip_bad},
        {"draft", NULL, "images: decode JPEGs at 1/2, 1/4 or 1/8 size when that covers --size (faster)", NULL, &draft},
    };
    const cli_command c = {"convert", "fashion-mnist|idx IMAGES LABELS|csv FILE|images DIR|cifar10 DIR|cifar100 DIR",
                           "Writes HDF5 datasets (/x, /y, classes) that train, eval and predict read.",
                           flags, NFLAGS(flags), 1, 3};
    const char *pos[3];
    int npos, rc = cli_parse(&c, argc, argv, pos, &npos);
    if (rc) return rc < 0 ? CLI_OK : CLI_BAD_INPUT;
    if (!out) return cli_usage_fail(d, "convert: --out is required");
    { /* never write over an input: idx's IMAGES and LABELS, csv's FILE; images' two outputs */
        const bool two = strcmp(pos[0], "idx") == 0 || strcmp(pos[0], "csv") == 0;
        const cv_path_role outs[] = {{"--out", out}, {"--val-out", val_out}};
        const cv_path_role ins[] = {{strcmp(pos[0], "csv") == 0 ? "CSV" : "IMAGES", two && npos > 1 ? pos[1] : NULL},
                                    {"LABELS", two && npos > 2 ? pos[2] : NULL}};
        if ((rc = cli_check_outputs(d, CLI_ROLES(outs), CLI_ROLES(ins)))) return rc;
    }
    if (strcmp(pos[0], "images") == 0) { /* collective: the ranks decode disjoint files */
        if (npos != 2) return cli_usage_fail(d, "convert images: needs one folder (DIR/CLASS/IMAGE files)");
        return convert_images(d, pos[1], out, size, channels, val_split, val_out, seed, skip_bad, draft);
    }
    if (size || channels || val_split || val_out || seed || skip_bad || draft)
        return cli_usage_fail(d, "convert %s: --size, --channels, --val-split, --val-out, --seed, --skip-bad and --draft "
                                 "are for `convert images`", pos[0]);
    if (d->rank != 0) return CLI_OK;
    cv_err err;
    if (strcmp(pos[0], "fashion-mnist") == 0) {
        if (npos != 1) return cli_usage_fail(d, "convert fashion-mnist: takes no file arguments (use --src DIR)");
        int cls[10], ncls = 0, keep[10], nkeep = 0;
        if (positive && parse_classes("positive", positive, cls, 10, &ncls)) return CLI_BAD_INPUT;
        if (classes && parse_classes("classes", classes, keep, 10, &nkeep)) return CLI_BAD_INPUT;
        if ((per_class || relabel) && !classes)
            return cli_usage_fail(d, "convert fashion-mnist: --per-class and --relabel need --classes");
        cv_class_subset sub = {keep, nkeep, 0, relabel};
        long n = 0;
        if (per_class && cli_int("--per-class", per_class, 1, 1000000, &n)) return CLI_BAD_INPUT;
        sub.per_class = (int)n;
        if ((rc = check_split_outputs(d, 0, src, out, "--src"))) return rc;
        rc = cv_convert_fashion_mnist(src, out, positive ? cls : NULL, ncls, pos_name, classes ? &sub : NULL, &err);
        if (!rc) printf("wrote %s/train.h5 and %s/test.h5\n", out, out);
    } else if (strcmp(pos[0], "idx") == 0) {
        if (npos != 3) return cli_usage_fail(d, "convert idx: needs IMAGES and LABELS files");
        rc = cv_convert_idx(pos[1], pos[2], out, &err);
        if (!rc) printf("wrote %s\n", out);
    } else if (strcmp(pos[0], "cifar10") == 0 || strcmp(pos[0], "cifar100") == 0) {
        const bool ten = pos[0][5] == '1' && pos[0][6] == '0' && !pos[0][7];
        if (npos != 2) return cli_usage_fail(d, "convert %s: needs the folder of its binary version's files", pos[0]);
        if (label && (ten || (strcmp(label, "fine") != 0 && strcmp(label, "coarse") != 0)))
            return cli_usage_fail(d, "convert %s: --label takes fine or coarse (CIFAR-100's labels)", pos[0]);
        if ((rc = check_split_outputs(d, ten ? 10 : 100, pos[1], out, "DIR"))) return rc;
        rc = cv_convert_cifar(pos[1], out, ten ? 10 : 100, label && strcmp(label, "coarse") == 0, &err);
        if (!rc) printf("wrote %s/train.h5 and %s/test.h5\n", out, out);
    } else if (strcmp(pos[0], "csv") == 0) {
        if (npos != 2) return cli_usage_fail(d, "convert csv: needs one CSV file");
        if (!label) return cli_usage_fail(d, "convert csv: --label COLUMN is required");
        cv_csv_options o = {.label = label, .as_float = as_float, .no_header = no_header};
        if (separator) {
            o.separator = strcmp(separator, "tab") == 0 || strcmp(separator, "\\t") == 0 ? '\t'
                          : strlen(separator) == 1 && strchr(",;\t", separator[0])   ? separator[0]
                                                                                       : 0;
            if (!o.separator) return cli_usage_fail(d, "convert csv: --separator takes , ; or tab, not '%s'", separator);
        }
        rc = cv_convert_csv_with(pos[1], &o, out, &err);
        if (!rc) printf("wrote %s\n", out);
    } else {
        return cli_usage_fail(d, "convert: unknown source '%s' (fashion-mnist, idx, csv, images, cifar10, cifar100)", pos[0]);
    }
    return rc ? cli_fail(d, "%s", err.msg) : CLI_OK;
}
