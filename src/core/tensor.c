/* Per-sample tensor shapes (convoy/tensor.h), as messages write them. */
#include "convoy/tensor.h"

#include <stdio.h>

const char *cv_shape_str(cv_shape s, char *buf, size_t size)
{
    if (s.rank == 3)
        snprintf(buf, size, "(%d, %d, %d)", s.d[0], s.d[1], s.d[2]);
    else
        snprintf(buf, size, "(%d)", s.d[0]);
    return buf;
}
