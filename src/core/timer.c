/* The one clock every timing in convoy reads. */
#include "convoy/timer.h"

#include <time.h>

double cv_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
