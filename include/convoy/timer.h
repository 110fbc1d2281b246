/* Module core (its preamble: convoy/error.h). Wall-clock seconds for throughput figures and per-layer profiles. */
#ifndef CONVOY_TIMER_H
#define CONVOY_TIMER_H

/** Seconds on a monotonic clock (only differences mean anything). */
double cv_now(void);

#endif
