/* Training histories and SVG charts: CSV histories read back (and refused with FILE:LINE when
 * malformed), curves and confusion heat maps are well-formed XML with the expected series and
 * cells, and train --plot / --log write matching files after every epoch. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/data.h"
#include "convoy/history.h"
#include "convoy/plot.h"
#include "convoy/train.h"
#include "xmlcheck.h"

#define TMP CONVOY_TEST_TMP "/plot"

static void setup(void)
{
    cr_assert_eq(system("mkdir -p " TMP), 0);
}

TestSuite(plot, .init = setup);

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void assert_well_formed(const char *path, char **out)
{
    char *svg = slurp(path), why[160];
    cr_assert_not_null(svg, "%s not written", path);
    const char *bad = xml_check(svg, why, sizeof why);
    cr_assert_null(bad, "%s: not well-formed XML: %s", path, bad);
    cr_assert_not_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""), "%s: no svg root", path);
    *out = svg;
}

static const char *history_csv =
    "epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds,images_per_s\n"
    "1,0.001,0.9,0.6,0.7,0.7,1.0,100\n"
    "2,0.001,0.6,0.75,0.55,0.79,1.1,98\n"
    "\n"
    "3,0.0005,nan,0.8,0.5,0.81,1.0,101\n";

Test(plot, reads_a_history_csv)
{
    cv_history h;
    cv_err err;
    write_text(TMP "/h.csv", history_csv);
    cr_assert_eq(cv_history_read_csv(&h, TMP "/h.csv", &err), 0, "%s", err.msg);
    cr_assert_eq(h.ncols, 8);
    cr_assert_eq(h.nrows, 3);
    cr_assert_eq(cv_history_col(&h, "val_accuracy"), 5);
    cr_assert_eq(cv_history_col(&h, "nope"), -1);
    cr_assert_float_eq(h.v[1 * 8 + 3], 0.75, 1e-12);
    cr_assert(isnan(h.v[2 * 8 + 2]), "nan cell kept as NaN");
    cr_assert_float_eq(h.v[2 * 8 + 1], 0.0005, 1e-12);
    cv_history_free(&h);
}

Test(plot, refuses_malformed_histories)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"", "h-bad.csv: empty file"},
        {"epoch,lr,accuracy\n1,0.1,0.5\n", "h-bad.csv:1: no 'epoch' and 'loss' columns"},
        {"epoch,loss\n1,0.5\n2\n", "h-bad.csv:3: 1 fields, the header has 2"},
        {"epoch,loss\n1,0.5\n2,abc\n", "h-bad.csv:3: bad number 'abc' in column loss"},
        {"epoch,loss\n1,0.5x\n", "h-bad.csv:2: bad number '0.5x' in column loss"},
        {"epoch,,loss\n", "h-bad.csv:1: column 2 has an empty or overlong name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cv_history h;
        cv_err err;
        write_text(TMP "/h-bad.csv", cases[i].text);
        cr_assert_eq(cv_history_read_csv(&h, TMP "/h-bad.csv", &err), -1, "case %zu accepted", i);
        cr_assert_not_null(strstr(err.msg, cases[i].want), "case %zu: '%s' lacks '%s'", i, err.msg, cases[i].want);
    }
    cv_history h;
    cv_err err;
    cr_assert_eq(cv_history_read_csv(&h, TMP "/missing.csv", &err), -1);
    cr_assert_not_null(strstr(err.msg, "missing.csv: cannot open"), "%s", err.msg);
}

Test(plot, curves_svg_has_both_panels_and_every_series)
{
    cv_history h[2];
    cv_err err;
    write_text(TMP "/a.csv", history_csv);
    write_text(TMP "/b.csv", "epoch,lr,loss,accuracy,seconds,images_per_s\n1,0.1,1.5,0.4,1,1\n2,0.1,1.2,0.5,1,1\n");
    cr_assert_eq(cv_history_read_csv(&h[0], TMP "/a.csv", &err), 0, "%s", err.msg);
    cr_assert_eq(cv_history_read_csv(&h[1], TMP "/b.csv", &err), 0, "%s", err.msg);

    /* one history: train and validation in loss and accuracy panels */
    char *svg;
    cr_assert_eq(cv_plot_curves_svg(TMP "/one.svg", h, 1, NULL, &err), 0, "%s", err.msg);
    assert_well_formed(TMP "/one.svg", &svg);
    cr_assert_eq(count_of(svg, "class=\"series\""), 4, "series: loss, val_loss, accuracy, val_accuracy");
    const char *cols[] = {"data-column=\"loss\"", "data-column=\"val_loss\"", "data-column=\"accuracy\"",
                          "data-column=\"val_accuracy\""};
    for (int i = 0; i < 4; i++) cr_assert_eq(count_of(svg, cols[i]), 1, "%s", cols[i]);
    cr_assert_eq(count_of(svg, "data-points=\"3\""), 4);
    /* the NaN loss of epoch 3 breaks nothing: 2 train-loss dots, 3 of each other series */
    cr_assert_eq(count_of(svg, "<circle"), 2 + 3 + 3 + 3);
    cr_assert_geq(count_of(svg, "class=\"ytick\""), 6, "ticks on both y axes");
    cr_assert_eq(count_of(svg, "class=\"xlabel\">epoch<"), 2);
    cr_assert_eq(count_of(svg, ">train</text>"), 1, "legend entry train");
    cr_assert_eq(count_of(svg, ">validation</text>"), 1, "legend entry validation");
    free(svg);

    /* two histories, labels that need escaping: a colour and a legend entry per file */
    const char *labels[] = {"adam <lr=1e-3> & co", "sgd"};
    cr_assert_eq(cv_plot_curves_svg(TMP "/two.svg", h, 2, labels, &err), 0, "%s", err.msg);
    assert_well_formed(TMP "/two.svg", &svg);
    cr_assert_eq(count_of(svg, "class=\"series\""), 4 + 2);
    cr_assert_eq(count_of(svg, "data-label=\"sgd\""), 2);
    cr_assert_eq(count_of(svg, ">adam &lt;lr=1e-3&gt; &amp; co</text>"), 1, "escaped legend entry");
    cr_assert_eq(count_of(svg, "stroke=\"#2ca02c\""), 0, "only two colours");
    cr_assert_eq(count_of(svg, "solid: train, dashed: validation"), 1);
    free(svg);
    cv_history_free(&h[0]);
    cv_history_free(&h[1]);
}

Test(plot, regression_histories_plot_their_metric)
{
    cv_history h;
    cv_err err;
    write_text(TMP "/r.csv", "epoch,lr,loss,mae,seconds,images_per_s\n1,0.1,2.0,1.1,1,1\n");
    cr_assert_eq(cv_history_read_csv(&h, TMP "/r.csv", &err), 0, "%s", err.msg);
    char *svg;
    cr_assert_eq(cv_plot_curves_svg(TMP "/r.svg", &h, 1, NULL, &err), 0, "%s", err.msg);
    assert_well_formed(TMP "/r.svg", &svg);
    cr_assert_eq(count_of(svg, "data-column=\"mae\""), 1);
    cr_assert_eq(count_of(svg, "class=\"series\""), 2);
    free(svg);
    /* an unwritable place is an error naming it, and leaves nothing behind */
    cr_assert_eq(cv_plot_curves_svg(TMP "/no-such-dir/r.svg", &h, 1, NULL, &err), -1);
    cr_assert_not_null(strstr(err.msg, "no-such-dir/r.svg: cannot create"), "%s", err.msg);
    cv_history_free(&h);
}

Test(plot, confusion_svg_cells)
{
    const int64_t counts[9] = {5, 1, 0, 2, 7, 1, 0, 0, 9};
    char *names[3] = {"cat", "dog & wolf", "<bird>"};
    cv_err err;
    char *svg;
    cr_assert_eq(cv_plot_confusion_svg(TMP "/c.svg", counts, 3, names, "test", &err), 0, "%s", err.msg);
    assert_well_formed(TMP "/c.svg", &svg);
    cr_assert_eq(count_of(svg, "class=\"cell\""), 9);
    char want[96];
    for (int t = 0; t < 3; t++)
        for (int p = 0; p < 3; p++) {
            snprintf(want, sizeof want, "data-true=\"%d\" data-pred=\"%d\" data-count=\"%lld\"", t, p,
                     (long long)counts[t * 3 + p]);
            cr_assert_eq(count_of(svg, want), 1, "%s", want);
        }
    cr_assert_eq(count_of(svg, ">dog &amp; wolf</text>"), 2, "row and column label");
    cr_assert_eq(count_of(svg, ">&lt;bird&gt;</text>"), 2);
    free(svg);
}

/* the x extent of the <text> element holding `needle` (anchor middle, 0.55 em a character
 * at least), and the picture's width */
static void text_extent(const char *svg, const char *needle, double px, double *lo, double *hi, double *width)
{
    const char *t = strstr(svg, needle);
    cr_assert_not_null(t, "%s", needle);
    const char *open = t;
    while (open > svg && strncmp(open, "<text ", 6) != 0) open--;
    double x = 0;
    cr_assert_eq(sscanf(open, "<text x=\"%lf\"", &x), 1);
    cr_assert_not_null(strstr(open, "text-anchor=\"middle\""));
    const double half = 0.55 * px * (double)strlen(needle) / 2;
    *lo = x - half;
    *hi = x + half;
    cr_assert_eq(sscanf(strstr(svg, "<svg "), "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%lf\"", width), 1);
}

/* two or three classes: the title and the subtitle fit in the picture (they were clipped: the
 * picture was as wide as the grid and its labels) */
Test(plot, confusion_svg_title_fits_few_classes)
{
    const int64_t counts[9] = {5, 1, 0, 2, 7, 1, 0, 0, 9};
    char *names[3] = {"no", "yes", "maybe"};
    const char *title = "data/fmnist-footwear-checkpoint.h5 on data/fmnist/test-footwear.h5";
    cv_err err;
    for (int K = 2; K <= 3; K++) {
        char *svg;
        cr_assert_eq(cv_plot_confusion_svg(TMP "/c2.svg", counts, K, names, title, &err), 0, "%s", err.msg);
        assert_well_formed(TMP "/c2.svg", &svg);
        double lo, hi, W;
        text_extent(svg, title, 14, &lo, &hi, &W);
        cr_assert(lo >= 0 && hi <= W, "K=%d: title spans %.0f..%.0f of a %.0f-wide picture", K, lo, hi, W);
        text_extent(svg, "predicted class (columns) - shade: share of the true class", 12, &lo, &hi, &W);
        cr_assert(lo >= 0 && hi <= W, "K=%d: subtitle spans %.0f..%.0f of a %.0f-wide picture", K, lo, hi, W);
        free(svg);
    }
}

/* train --log and --plot through the library: files after every epoch, columns as documented */
Test(plot, train_writes_log_and_plot)
{
    /* 3 classes: which of x0, x1, x2 is largest */
    enum { N = 300, D = 3 };
    float x[N * D];
    int32_t y[N];
    uint64_t r = 12345;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            x[i * D + j] = (float)(r >> 40) / (float)(1 << 24);
        }
        y[i] = x[i * D] > x[i * D + 1] ? (x[i * D] > x[i * D + 2] ? 0 : 2) : (x[i * D + 1] > x[i * D + 2] ? 1 : 2);
    }
    cv_err err;
    const cv_shape shape = {1, {D, 0, 0}};
    cr_assert_eq(cv_dataset_write(TMP "/d.h5", N, shape, CV_DTYPE_F32, x, y, NULL, 0, NULL, 0, &err), 0, "%s", err.msg);
    cv_model_spec spec;
    cr_assert_eq(cv_model_parse(&spec,
                                "input shape=3\ndense units=8 activation=tanh\ndense units=3 activation=softmax\n"
                                "compile optimizer=adam learning_rate=0.05 loss=sparse_categorical_crossentropy "
                                "metrics=accuracy\nfit epochs=4 batch_size=32 validation_split=0.2 seed=1\n",
                                "m.model", &err),
                 0, "%s", err.msg);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    const cv_train_opts o = {.data = TMP "/d.h5", .out = out, .log = TMP "/t.csv", .plot = TMP "/t.svg"};
    const cv_dist d = cv_dist_single();
    cv_epoch_stats st[4];
    cr_assert_eq(cv_train(&spec, &o, &d, st, &err), 0, "%s", err.msg);
    fclose(out);
    /* not a terminal: one plain line per epoch, no carriage returns */
    cr_assert_eq(count_of(text, "\r"), 0);
    cr_assert_eq(count_of(text, "\nepoch "), 4, "%s", text);
    cr_assert_not_null(strstr(text, "\nepoch 4/4  loss "), "%s", text);
    free(text);

    cv_history h;
    cr_assert_eq(cv_history_read_csv(&h, TMP "/t.csv", &err), 0, "%s", err.msg);
    const char *want[] = {"epoch", "lr", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "images_per_s"};
    cr_assert_eq(h.ncols, 8);
    for (int i = 0; i < 8; i++) cr_assert_str_eq(h.cols[i], want[i]);
    cr_assert_eq(h.nrows, 4);
    for (int e = 0; e < 4; e++) {
        cr_assert_float_eq(h.v[e * 8], e + 1, 0);
        const double n = (double)st[e].val.count;
        cr_assert_float_eq(h.v[e * 8 + 5], st[e].val.correct / n, 1e-5, "val_accuracy of epoch %d", e + 1);
    }
    cv_history_free(&h);
    char *svg;
    assert_well_formed(TMP "/t.svg", &svg);
    cr_assert_eq(count_of(svg, "class=\"series\""), 4);
    cr_assert_eq(count_of(svg, "data-points=\"4\""), 4, "every epoch in every series");
    free(svg);
    cv_model_spec_free(&spec);
}

Test(plot, the_xml_checker_rejects_what_browsers_reject)
{
    static const char *const bad[] = {
        "<svg><g></svg>", "<svg a=\"1\" a=\"2\"/>", "<svg a=1/>", "<svg>&nbsp;</svg>", "<svg>a & b</svg>",
        "<svg/><svg/>", "<svg a=\"<\"/>", "text<svg/>", "<svg><g></g>", "",
    };
    char why[160];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not_null(xml_check(bad[i], why, sizeof why), "accepted '%s'", bad[i]);
    cr_assert_null(xml_check("<?xml version=\"1.0\"?>\n<svg a='&amp;&#38;&#x26;'><g/>t&lt;</svg>\n", why, sizeof why),
                   "%s", why);
}
