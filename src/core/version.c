/* The library's version string (the headers carry theirs in CONVOY_VERSION_STRING). */
#include "convoy/version.h"

const char *cv_version(void) { return CONVOY_VERSION_STRING; }
