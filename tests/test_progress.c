/* The per-epoch display: on a pseudo-terminal the bar is redrawn in place with \r at most ten
 * times a second and ends with the epoch's final line; elsewhere exactly one plain line per epoch
 * in the format scripts grep; nothing at all when off. */
#define _GNU_SOURCE /* posix_openpt, ptsname */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "convoy/model.h"
#include "convoy/progress.h"
#include "convoy/timer.h"

static cv_model_spec spec;

static void setup(void)
{
    cv_err err;
    cr_assert_eq(cv_model_parse(&spec,
                                "input shape=2\ndense units=2 activation=softmax\n"
                                "compile optimizer=sgd loss=sparse_categorical_crossentropy metrics=accuracy\n",
                                "p.model", &err),
                 0, "%s", err.msg);
}

static void teardown(void) { cv_model_spec_free(&spec); }

TestSuite(progress, .init = setup, .fini = teardown);

static const cv_metrics running = {.loss = 30.0, .correct = 80.0, .count = 100};
static const cv_metrics val = {.loss = 5.0, .correct = 9.0, .count = 10};

static int count_of(const char *hay, const char *needle)
{
    int c = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) c++;
    return c;
}

Test(progress, plain_line_when_not_a_terminal)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cv_progress p;
    cv_progress_init(&p, f, true, false, 10, 5, 20, 100);
    cr_assert(!p.tty);
    cv_progress_epoch(&p, 2, 0);
    for (int s = 0; s < 5; s++) cv_progress_step(&p, &spec, s, &running);
    cv_progress_end(&p, &spec, &running, &val, 2.0, NULL);
    fclose(f);
    cr_assert_str_eq(text, "epoch 3/10  loss 0.3000  accuracy 0.8000  val_loss 0.5000  val_accuracy 0.9000  2.0s  50 img/s\n");
    free(text);

    /* verbose adds the learning rate and the time breakdown; off prints nothing */
    text = NULL;
    f = open_memstream(&text, &len);
    cv_progress_init(&p, f, true, true, 10, 5, 20, 100);
    cv_progress_epoch(&p, 0, 0);
    const cv_progress_detail dt = {0.001, 2.0, 0.25, 0.5};
    cv_progress_end(&p, &spec, &running, NULL, 2.0, &dt);
    cv_progress_init(&p, f, false, true, 10, 5, 20, 100);
    cv_progress_epoch(&p, 1, 0);
    cv_progress_step(&p, &spec, 0, &running);
    cv_progress_end(&p, &spec, &running, NULL, 2.0, &dt);
    cv_progress_break(&p);
    fclose(f);
    cr_assert_str_eq(text, "epoch 1/10  loss 0.3000  accuracy 0.8000    2.0s  50 img/s\n"
                           "  lr 0.001  time: train 2.00s (gradient allreduce 0.25s on rank 0)  validation 0.50s  400.0 ms/step\n");
    free(text);
}

/* a pseudo-terminal `cols` columns wide (0: the size left unset, as a bare pty has it): the slave
 * end is the display's FILE, the master end what a user would see. Where none can be opened (a
 * bare chroot) the test is skipped, saying so. */
static FILE *open_pty(int *master, int cols)
{
    *master = posix_openpt(O_RDWR | O_NOCTTY);
    if (*master < 0 || grantpt(*master) != 0 || unlockpt(*master) != 0)
        cr_skip_test("no pseudo-terminal can be opened here (posix_openpt: %s)", strerror(errno));
    const struct winsize ws = {.ws_row = 24, .ws_col = (unsigned short)cols};
    cr_assert_eq(ioctl(*master, TIOCSWINSZ, &ws), 0, "TIOCSWINSZ");
    /* our own session with the pty as its controlling terminal, as a login shell has (closing
     * the master end then hangs up the session: no SIGHUP for this test process) */
    signal(SIGHUP, SIG_IGN);
    cr_assert(setsid() >= 0 || getpgrp() == getpid(), "setsid");
    FILE *f = fopen(ptsname(*master), "w");
    if (!f) cr_skip_test("the pseudo-terminal's slave end cannot be opened (%s)", strerror(errno));
    cr_assert_eq(ioctl(fileno(f), TIOCSCTTY, 0), 0, "TIOCSCTTY");
    fcntl(*master, F_SETFL, O_NONBLOCK);
    return f;
}

static size_t drain(int master, char *buf, size_t have, size_t cap)
{
    ssize_t n;
    while (have + 1 < cap && (n = read(master, buf + have, cap - 1 - have)) > 0) have += (size_t)n;
    buf[have] = '\0';
    return have;
}

Test(progress, bar_on_a_terminal_is_redrawn_at_most_ten_times_a_second)
{
    int master;
    FILE *f = open_pty(&master, 200); /* wide enough for every part of the line */
    cv_progress p;
    enum { STEPS = 100000 };
    cv_progress_init(&p, f, true, false, 3, STEPS, 1, STEPS);
    cr_assert(p.tty, "a pseudo-terminal is a terminal");
    static char out[1 << 16];
    size_t have = 0;
    cv_progress_epoch(&p, 0, 0);
    /* about 0.35 s of steps: the first is drawn at once, then at most one per 0.1 s */
    const double t0 = cv_now();
    int64_t calls = 0;
    for (; cv_now() - t0 < 0.35; calls++) {
        cv_progress_step(&p, &spec, calls < STEPS - 2 ? calls : STEPS - 2, &running);
        if (calls % 1000 == 0) have = drain(master, out, have, sizeof out);
    }
    /* a step after a pause longer than 0.1 s is always drawn, however the scheduler treated us */
    usleep(120000);
    cv_progress_step(&p, &spec, STEPS - 2, &running);
    const double took = cv_now() - t0;
    cv_progress_end(&p, &spec, &running, &val, 7.0, NULL);
    fclose(f);
    usleep(20000);
    have = drain(master, out, have, sizeof out);
    close(master);

    cr_assert_eq(strncmp(out, "Epoch 1/3\r\n", 11), 0, "header: %.40s", out);
    const int draws = count_of(out, " - ETA: ");
    cr_assert_geq(draws, 2, "%d redraws in %.2fs", draws, took);
    cr_assert_leq(draws, (int)(took * 10) + 2, "%d redraws in %.2fs (and the rest of the epoch)", draws, took);
    cr_assert_not_null(strstr(out, "\r       1/100000 [>.............................] - ETA: "), "%s", out);
    cr_assert_not_null(strstr(out, " - loss: 0.3000 - accuracy: 0.8000 - "), "%s", out);
    /* the final line: full bar, time, per-step time, train and val metrics, throughput, newline */
    cr_assert_not_null(strstr(out, "\r  100000/100000 [==============================] - 7s 0ms/step - loss: 0.3000 - "
                                   "accuracy: 0.8000 - val_loss: 0.5000 - val_accuracy: 0.9000 - 14286 img/s"),
                       "%s", out + (have > 300 ? have - 300 : 0));
    cr_assert_eq(strcmp(out + have - 2, "\r\n"), 0, "the final line ends the line");
}

Test(progress, break_ends_a_half_drawn_line)
{
    int master;
    FILE *f = open_pty(&master, 200);
    cv_progress p;
    cv_progress_init(&p, f, true, false, 1, 10, 1, 10);
    cv_progress_epoch(&p, 0, 0);
    cv_progress_step(&p, &spec, 0, &running);
    cv_progress_break(&p);
    cv_progress_break(&p); /* once only */
    fprintf(f, "interrupted\n");
    fclose(f);
    usleep(20000);
    static char out[4096];
    drain(master, out, 0, sizeof out);
    close(master);
    cr_assert_not_null(strstr(out, "img/s\r\ninterrupted\r\n"), "%s", out);
    cr_assert_eq(count_of(out, "\r\n\r\n"), 0, "no empty line: %s", out);
}

/* One epoch drawn on a pty `cols` wide (0: unset) into out: a step's bar, then the final line. */
static void draw_epoch(int cols, char *out, size_t cap)
{
    int master;
    FILE *f = open_pty(&master, cols);
    cv_progress p;
    cv_progress_init(&p, f, true, false, 3, 938, 64, 60000);
    cr_assert(p.tty);
    cv_progress_epoch(&p, 0, 0);
    cv_progress_step(&p, &spec, 411, &running);
    cv_progress_end(&p, &spec, &running, &val, 37.0, NULL);
    fclose(f);
    usleep(20000);
    drain(master, out, 0, cap);
    close(master);
}

/* the longest stretch written between a line start or \r and the next */
static int widest(const char *out)
{
    int w = 0, n = 0;
    for (const char *c = out; *c; c++) {
        n = *c == '\r' || *c == '\n' ? 0 : n + 1;
        if (n > w) w = n;
    }
    return w;
}

Test(progress, every_draw_fits_the_terminal_at_any_width)
{
    static char out[1 << 14];
    for (int cols = 1; cols <= 160; cols++) {
        draw_epoch(cols, out, sizeof out);
        cr_assert_leq(widest(out), cols - 1, "%d columns: %s", cols, out);
        cr_assert_eq(count_of(out, "\r\n"), 2, "%d columns: the header and the final line end rows: %s", cols, out);
        if (cols >= 30) cr_assert_not_null(strstr(out, " - loss: 0.3000"), "%d columns: the loss is kept: %s", cols, out);
    }
}

Test(progress, parts_drop_in_priority_order)
{
    static char out[1 << 14];
    draw_epoch(200, out, sizeof out);
    cr_assert_not_null(strstr(out, "\r  938/938 [==============================] - 37s 39ms/step - loss: 0.3000 - "
                                   "accuracy: 0.8000 - val_loss: 0.5000 - val_accuracy: 0.9000 - 1622 img/s"),
                       "%s", out);
    /* 80: the per-step time, throughput and bar go first, then the train metrics after the loss */
    draw_epoch(80, out, sizeof out);
    cr_assert_not_null(strstr(out, "\r  938/938 - 37s - loss: 0.3000 - val_loss: 0.5000 - val_accuracy: 0.9000"),
                       "%s", out);
    /* mid-epoch, the bar shrinks to keep the train metrics */
    const char *bar = strstr(out, "\r  412/938 [");
    cr_assert_not_null(bar, "%s", out);
    const char *end = strchr(bar, ']');
    cr_assert(end && end - bar - 12 >= 10 && end - bar - 12 < 30, "a bar of 10 to 29: %s", out);
    cr_assert_eq(strncmp(end, "] - ETA: ", 9), 0, "%s", out);
    cr_assert_not_null(strstr(end, " - loss: 0.3000 - accuracy: 0.8000"), "%s", out);
    /* 40: then the counter and the val metrics after val_loss */
    draw_epoch(40, out, sizeof out);
    cr_assert_not_null(strstr(out, "\r37s - loss: 0.3000 - val_loss: 0.5000"), "%s", out);
}

Test(progress, width_from_columns_when_the_terminal_has_no_size)
{
    static char out[1 << 14];
    setenv("COLUMNS", "50", 1);
    draw_epoch(0, out, sizeof out);
    cr_assert_leq(widest(out), 49, "%s", out);
    cr_assert_geq(widest(out), 30, "%s", out);
    unsetenv("COLUMNS");
    draw_epoch(0, out, sizeof out); /* neither: 80 */
    cr_assert_leq(widest(out), 79, "%s", out);
    cr_assert_geq(widest(out), 70, "%s", out);
}
