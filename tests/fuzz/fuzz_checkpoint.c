/* libFuzzer harness for checkpoint loading: the input bytes as an HDF5 checkpoint, read by
 * cv_checkpoint_spec (the saved model text, re-parsed) and cv_checkpoint_load (the network,
 * every tensor's shape checked, and the normaliser). Corrupt files must give one-line errors
 * and leave no memory or HDF5 handle behind. */
#include <string.h>

#include "convoy/checkpoint.h"
#include "fuzz_util.h"

static void check_err(const cv_err *err)
{
    if (!err->msg[0] || strchr(err->msg, '\n')) abort(); /* a failure must say why, in one line */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_tmp(data, size);
    if (!path) return 0;
    cv_model_spec spec;
    cv_err err = {{0}};
    if (cv_checkpoint_spec(path, &spec, &err) == 0)
        cv_model_spec_free(&spec);
    else
        check_err(&err);
    err.msg[0] = '\0';
    cv_normalizer nz;
    cv_net *net = cv_checkpoint_load(path, 4, &nz, &err);
    if (net) {
        cv_net_free(net);
        cv_normalizer_free(&nz);
    } else {
        check_err(&err);
    }
    fuzz_check_handles(path);
    return 0;
}
