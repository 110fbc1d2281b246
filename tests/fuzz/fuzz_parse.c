/* libFuzzer harness for the model-file parser: the input bytes as model text (up to the first
 * NUL, as cv_model_load would refuse a file with NUL bytes). A parse either succeeds or fails
 * with one line naming "<fuzz>:LINE"; never a crash, a leak or undefined behaviour. */
#include <stdlib.h>
#include <string.h>

#include "convoy/model.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cv_model_spec spec;
    cv_err err = {{0}};
    if (cv_model_parse(&spec, text, "<fuzz>", &err) == 0) {
        (void)cv_model_param_count(&spec);
        cv_model_spec_free(&spec);
    } else if (!err.msg[0] || strchr(err.msg, '\n')) {
        abort(); /* a failure must say why, in one line */
    }
    free(text);
    return 0;
}
