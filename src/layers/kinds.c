/* The table of layer kinds (convoy/layers.h): one descriptor per kind, each defined in its own
 * file (src/layers/<kind>.c), listed once in CV_LAYER_KINDS. */
#include "layers/layers-impl.h"

#include <string.h>

#define DECLARE(e, name) extern const cv_layer_kind_desc cv_kind_##name;
CV_LAYER_KINDS(DECLARE)
#undef DECLARE

#define ENTRY(e, name) [e] = &cv_kind_##name,
const cv_layer_kind_desc *const cv_layer_kinds[CV_LAYER_KIND_COUNT] = {CV_LAYER_KINDS(ENTRY)};
#undef ENTRY

#define ONE(e, name) +1
_Static_assert(0 CV_LAYER_KINDS(ONE) == CV_LAYER_KIND_COUNT, "one descriptor per layer kind");
_Static_assert(sizeof cv_layer_kinds / sizeof cv_layer_kinds[0] == CV_LAYER_KIND_COUNT, "the table covers every kind");
#undef ONE
_Static_assert(CV_LAYER_KEY_COUNT <= 32, "a kind's keys are a 32-bit set");

cv_layer_kind cv_layer_kind_find(const char *name)
{
    for (int k = 0; k < CV_LAYER_KIND_COUNT; k++)
        if (strcmp(cv_layer_kinds[k]->name, name) == 0) return (cv_layer_kind)k;
    return CV_LAYER_KIND_COUNT;
}

/* The cast to unsigned makes a negative (corrupt) enum value land on "?" too. */
const char *cv_layer_kind_name(cv_layer_kind k)
{
    return (unsigned)k < CV_LAYER_KIND_COUNT ? cv_layer_kinds[k]->name : "?";
}
