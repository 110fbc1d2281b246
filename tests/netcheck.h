/* Shared by the checkpoint tests: a network from model text (parsed as "m.model", batches up to
 * 4, seed 1), every failure a test assertion. */
#ifndef CONVOY_TESTS_NETCHECK_H
#define CONVOY_TESTS_NETCHECK_H

#include <criterion/criterion.h>

#include "convoy/checkpoint.h"
#include "convoy/model.h"

static inline cv_net *make_net(const char *text, cv_model_spec *spec)
{
    cv_err err;
    cr_assert_eq(cv_model_parse(spec, text, "m.model", &err), 0, "%s", err.msg);
    cv_net *net = cv_net_create(spec, 4, 1, &err);
    cr_assert(net, "%s", err.msg);
    return net;
}

#endif
