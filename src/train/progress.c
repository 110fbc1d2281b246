/* The per-epoch display: Keras's progress bar on terminals, one stable plain line elsewhere
 * (scripts and tests grep "epoch N/M ... val_accuracy X"). */
#include "convoy/progress.h"

#include <fcntl.h>
#include <math.h>
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

/* Writes the line, padded with spaces over what the previous draw left on screen. */
static void draw(cv_progress *p, const char *line, bool final)
{
    int n = fprintf(p->out, "\r%s", line) - 1;
    for (int i = n; i < p->drawn; i++) fputc(' ', p->out);
    p->drawn = final ? 0 : n;
    if (final) fputc('\n', p->out);
    fflush(p->out);
}

/* "  412/938 [=========>....................]" */
static int bar(char *buf, size_t size, int64_t done, int64_t steps)
{
    int digits = snprintf(NULL, 0, "%lld", (long long)steps);
    int len = snprintf(buf, size, "%*lld/%lld [", digits + 2, (long long)done, (long long)steps);
    const int fill = (int)(BAR_WIDTH * done / (steps ? steps : 1));
    for (int i = 0; i < BAR_WIDTH && len + 2 < (int)size; i++)
        buf[len++] = i < fill ? '=' : i == fill ? '>' : '.';
    buf[len++] = ']';
    buf[len] = '\0';
    return len;
}

/* " - loss: 0.3121 - accuracy: 0.8870" */
static int metric_items(char *buf, size_t size, const cv_model_spec *spec, const cv_metrics *m, const char *prefix)
{
    const char *names[CV_METRIC_LIST_MAX];
    double values[CV_METRIC_LIST_MAX];
    const int k = cv_metric_list(spec, m, names, values);
    int len = 0;
    for (int i = 0; i < k && len < (int)size; i++)
        len += snprintf(buf + len, size - (size_t)len, " - %s%s: %.4f", prefix, names[i], values[i]);
    return len < (int)size ? len : (int)size - 1;
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
    fprintf(p->out, "Epoch %d/%d\n", epoch + 1, p->epochs);
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
    char line[512], eta_s[32];
    duration(eta_s, sizeof eta_s, eta);
    int len = bar(line, sizeof line, step + 1, p->steps);
    len += snprintf(line + len, sizeof line - (size_t)len, " - ETA: %s", eta_s);
    len += metric_items(line + len, sizeof line - (size_t)len, spec, m, "");
    snprintf(line + len, sizeof line - (size_t)len, " - %.0f img/s", images_done(p, step) / (el > 0 ? el : 1e-9));
    draw(p, line, false);
}

void cv_progress_end(cv_progress *p, const cv_model_spec *spec, const cv_metrics *train, const cv_metrics *val,
                     double seconds, const cv_progress_detail *detail)
{
    if (!p->on) return;
    const double ips = images_done(p, p->steps - 1) / (seconds > 0 ? seconds : 1e-9);
    if (p->tty) {
        char line[1024], took[32];
        duration(took, sizeof took, seconds);
        int len = bar(line, sizeof line, p->steps, p->steps);
        const double per_step = seconds / (double)(p->steps - p->first_step > 0 ? p->steps - p->first_step : 1);
        len += snprintf(line + len, sizeof line - (size_t)len, " - %s %.0fms/step", took, per_step * 1e3);
        len += metric_items(line + len, sizeof line - (size_t)len, spec, train, "");
        if (val) len += metric_items(line + len, sizeof line - (size_t)len, spec, val, "val_");
        snprintf(line + len, sizeof line - (size_t)len, " - %.0f img/s", ips);
        draw(p, line, true);
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
