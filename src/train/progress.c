/* The per-epoch display: Keras's progress bar on terminals, fitted to their width, one stable
 * plain line elsewhere (scripts and tests grep "epoch N/M ... val_accuracy X"). */
#include "convoy/progress.h"

#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "convoy/history.h"
#include "convoy/timer.h"
#include "convoy/metrics.h"

enum { BAR_WIDTH = 30 };
#define REDRAW_S 0.1 /* at most 10 redraws a second: a fast epoch must not flood the terminal */

/* Open MPI gives every rank a pseudo-terminal for its stdout even when mpirun writes to a pipe
 * or a Slurm log, so isatty alone would draw bars into log files: a real user's terminal is also
 * the process's controlling terminal, which an mpirun started from a script or batch job lacks. */
static bool has_terminal(void)
{
    const int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return false;
    close(fd);
    return true;
}

void cv_progress_init(cv_progress *p, FILE *out, bool on, bool verbose, int epochs, int64_t steps,
                      int64_t batch, int64_t n_train)
{
    *p = (cv_progress){.out = out, .on = on, .verbose = verbose, .epochs = epochs, .steps = steps,
                       .batch = batch, .n_train = n_train};
    p->tty = on && isatty(fileno(out)) && has_terminal();
}

/* Images of steps [first_step, step] of the epoch (the last step may be short). */
static double images_done(const cv_progress *p, int64_t step)
{
    int64_t hi = (step + 1) * p->batch, lo = p->first_step * p->batch;
    if (hi > p->n_train) hi = p->n_train;
    return (double)(hi - lo);
}

/* The terminal's width: TIOCGWINSZ on the display's own fd (asked at every draw, so a resized
 * window is followed), else on the controlling terminal (under mpirun the output is Open MPI's
 * pseudo-terminal, of no size, while the user's terminal is the controlling one), else $COLUMNS,
 * else 80. */
static int columns(FILE *out)
{
    struct winsize ws;
    if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    const int tty = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
    const bool sized = tty >= 0 && ioctl(tty, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0;
    if (tty >= 0) close(tty);
    if (sized) return ws.ws_col;
    const char *env = getenv("COLUMNS");
    char *end;
    const long c = env ? strtol(env, &end, 10) : 0;
    return env && *end == '\0' && c > 0 && c < 10000 ? (int)c : 80;
}

/* Writes the line (fitted to the width), padded with spaces over what the previous draw left. */
static void draw(cv_progress *p, const char *line, int avail, bool final)
{
    int n = fprintf(p->out, "\r%s", line) - 1;
    for (int i = n; i < p->drawn && i < avail; i++) fputc(' ', p->out);
    p->drawn = final ? 0 : n;
    if (final) fputc('\n', p->out);
    fflush(p->out);
}

/* A bar line is a row of parts, each kept or dropped whole so that the line stays one row
 * shorter than the terminal: at a narrow width the least useful go first (the throughput and
 * per-step time, then the bar, the train metrics after the loss, the step counter, the val
 * metrics after val_loss, the time), the loss last. The bar shrinks from BAR_WIDTH to
 * BAR_MIN before anything is dropped, and takes back what room is left. */
enum { BAR_MIN = 10, PART_LEN = 64, MAX_PARTS = 2 * CV_METRIC_LIST_MAX + 6, LINE_SIZE = (PART_LEN + 4) * MAX_PARTS };
typedef struct {
    char text[PART_LEN];
    const char *sep; /* before it, unless it is the first part shown */
    int prio;        /* dropped in increasing order */
    bool kept;
} part;
typedef struct {
    part p[MAX_PARTS];
    int n, bar; /* index of the bar part, -1 before it is added */
    int64_t done, steps;
} parts;

enum { P_STEP_TIME = 1, P_IMG_S, P_BAR, P_METRIC, P_COUNTER, P_VAL_METRIC, P_TIME, P_VAL_LOSS, P_LOSS };

static void add(parts *ps, const char *sep, int prio, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void add(parts *ps, const char *sep, int prio, const char *fmt, ...)
{
    if (ps->n == MAX_PARTS) return;
    part *t = &ps->p[ps->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->text, sizeof t->text, fmt, ap);
    va_end(ap);
    t->sep = sep;
    t->prio = prio;
    t->kept = true;
}

/* "  412/938 [=========>....................]": the counter and the bar (drawn at fit time) */
static void add_bar(parts *ps, int64_t done, int64_t steps)
{
    const int digits = snprintf(NULL, 0, "%lld", (long long)steps);
    add(ps, "", P_COUNTER, "%*lld/%lld", digits + 2, (long long)done, (long long)steps);
    ps->bar = ps->n;
    add(ps, " ", P_BAR, "%s", "");
    ps->done = done;
    ps->steps = steps;
}

/* " - loss: 0.3121 - accuracy: 0.8870" */
static void add_metrics(parts *ps, const cv_model_spec *spec, const cv_metrics *m, const char *prefix)
{
    const char *names[CV_METRIC_LIST_MAX];
    double values[CV_METRIC_LIST_MAX];
    const int k = cv_metric_list(spec, m, names, values);
    const bool val = *prefix != '\0';
    for (int i = 0; i < k; i++)
        add(ps, " - ", i == 0 ? (val ? P_VAL_LOSS : P_LOSS) : (val ? P_VAL_METRIC : P_METRIC), "%s%s: %.4f", prefix,
            names[i], values[i]);
}

static int length(const parts *ps, int bar_width)
{
    int len = 0;
    bool first = true;
    for (int i = 0; i < ps->n; i++) {
        if (!ps->p[i].kept) continue;
        len += (first ? 0 : (int)strlen(ps->p[i].sep)) +
               (i == ps->bar ? bar_width + 2 : (int)strlen(ps->p[i].text));
        first = false;
    }
    return len;
}

/* The kept parts, at most avail characters, into line (LINE_SIZE). */
static void fit(parts *ps, int avail, char *line, size_t size)
{
    while (length(ps, BAR_MIN) > avail) {
        int drop = -1;
        for (int i = 0; i < ps->n; i++)
            if (ps->p[i].kept && (drop < 0 || ps->p[i].prio < ps->p[drop].prio)) drop = i;
        if (drop < 0) break;
        ps->p[drop].kept = false;
    }
    int bar_width = BAR_MIN + avail - length(ps, BAR_MIN);
    if (bar_width > BAR_WIDTH) bar_width = BAR_WIDTH;
    size_t len = 0;
    bool first = true;
    line[0] = '\0';
    for (int i = 0; i < ps->n; i++) {
        if (!ps->p[i].kept) continue;
        if (!first) len += (size_t)snprintf(line + len, size - len, "%s", ps->p[i].sep);
        first = false;
        if (i != ps->bar) {
            len += (size_t)snprintf(line + len, size - len, "%s", ps->p[i].text);
            continue;
        }
        const int fill = (int)(bar_width * ps->done / (ps->steps ? ps->steps : 1));
        line[len++] = '[';
        for (int k = 0; k < bar_width; k++) line[len++] = k < fill ? '=' : k == fill ? '>' : '.';
        line[len++] = ']';
        line[len] = '\0';
    }
}

/* Keras's duration style: "12s", "3:05", "1:02:09" */
static void duration(char *buf, size_t size, double s)
{
    const long t = s < 0 || !(s < 1e9) ? 0 : lround(s);
    if (t < 60) snprintf(buf, size, "%lds", t);
    else if (t < 3600) snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
    else snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

void cv_progress_epoch(cv_progress *p, int epoch, int64_t first_step)
{
    p->epoch = epoch;
    p->first_step = first_step;
    p->t0 = cv_now();
    p->last_draw = 0.0;
    if (!p->tty) return;
    char head[64];
    snprintf(head, sizeof head, "Epoch %d/%d", epoch + 1, p->epochs);
    fprintf(p->out, "%.*s\n", columns(p->out) - 1, head);
    fflush(p->out);
}

void cv_progress_step(cv_progress *p, const cv_model_spec *spec, int64_t step, const cv_metrics *m)
{
    if (!p->tty || step + 1 >= p->steps) return; /* the last step is drawn by cv_progress_end */
    const double now = cv_now();
    if (now - p->last_draw < REDRAW_S) return;
    p->last_draw = now;
    const double el = now - p->t0, done = (double)(step + 1 - p->first_step);
    const double eta = el / done * (double)(p->steps - step - 1);
    char line[LINE_SIZE], eta_s[32];
    duration(eta_s, sizeof eta_s, eta);
    parts ps = {.bar = -1};
    add_bar(&ps, step + 1, p->steps);
    add(&ps, " - ", P_TIME, "ETA: %s", eta_s);
    add_metrics(&ps, spec, m, "");
    add(&ps, " - ", P_IMG_S, "%.0f img/s", images_done(p, step) / (el > 0 ? el : 1e-9));
    const int avail = columns(p->out) - 1;
    fit(&ps, avail, line, sizeof line);
    draw(p, line, avail, false);
}

void cv_progress_end(cv_progress *p, const cv_model_spec *spec, const cv_metrics *train, const cv_metrics *val,
                     double seconds, const cv_progress_detail *detail)
{
    if (!p->on) return;
    const double ips = images_done(p, p->steps - 1) / (seconds > 0 ? seconds : 1e-9);
    if (p->tty) {
        char line[LINE_SIZE], took[32];
        duration(took, sizeof took, seconds);
        const double per_step = seconds / (double)(p->steps - p->first_step > 0 ? p->steps - p->first_step : 1);
        parts ps = {.bar = -1};
        add_bar(&ps, p->steps, p->steps);
        add(&ps, " - ", P_TIME, "%s", took);
        add(&ps, " ", P_STEP_TIME, "%.0fms/step", per_step * 1e3);
        add_metrics(&ps, spec, train, "");
        if (val) add_metrics(&ps, spec, val, "val_");
        add(&ps, " - ", P_IMG_S, "%.0f img/s", ips);
        const int avail = columns(p->out) - 1;
        fit(&ps, avail, line, sizeof line);
        draw(p, line, avail, true);
    } else {
        char tl[384], vl[384] = "";
        cv_metrics_format(spec, train, "", tl, sizeof tl);
        if (val) cv_metrics_format(spec, val, "val_", vl, sizeof vl);
        fprintf(p->out, "epoch %d/%d  %s  %s  %.1fs  %.0f img/s\n", p->epoch + 1, p->epochs, tl, vl, seconds, ips);
    }
    if (p->verbose && detail)
        fprintf(p->out, "  lr %g  time: train %.2fs (gradient allreduce %.2fs on rank 0)  validation %.2fs  "
                        "%.1f ms/step\n", detail->lr, detail->train_s, detail->comm_s, detail->val_s,
                1e3 * detail->train_s / (double)(p->steps - p->first_step > 0 ? p->steps - p->first_step : 1));
    fflush(p->out);
}

void cv_progress_break(cv_progress *p)
{
    if (!p->drawn) return;
    fputc('\n', p->out);
    fflush(p->out);
    p->drawn = 0;
}
