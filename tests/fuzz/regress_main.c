/* Replays fuzz inputs without libFuzzer: runs LLVMFuzzerTestOneInput on every file of the
 * directories (or on the files) named on the command line, in name order. A directory that
 * does not exist is skipped (a harness may have no crash inputs yet). Linked with one harness
 * into fuzz_regress_NAME, it keeps every seed and every former crash a ctest case. Former
 * out-of-memory inputs fail it too: like libFuzzer's -rss_limit_mb=2048, a peak resident size
 * above 2 GiB is an error. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define RSS_LIMIT_KB (2048 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz_regress: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            uint8_t *bigger = realloc(buf, cap *= 2);
            if (!bigger) free(buf);
            buf = bigger;
        }
    }
    const int bad = ferror(f) || !buf;
    fclose(f);
    if (bad) {
        fprintf(stderr, "fuzz_regress: %s: cannot read\n", path);
        free(buf);
        return -1;
    }
    printf("fuzz_regress: %s (%zu bytes)\n", path, n);
    fflush(stdout);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0 && ru.ru_maxrss > RSS_LIMIT_KB) {
        fprintf(stderr, "fuzz_regress: %s: peak memory %ld MiB, more than %d MiB\n", path,
                ru.ru_maxrss / 1024, RSS_LIMIT_KB / 1024);
        return -1;
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "README.md") == 0) continue;
        if (n == cap) {
            char **bigger = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
            if (!bigger) { rc = -1; break; }
            names = bigger;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(len))) { rc = -1; break; }
        snprintf(names[n++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && run_file(names[i]) == 0) ++*count;
        else rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    int count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) continue; /* e.g. no crashes-NAME directory yet */
        if ((S_ISDIR(st.st_mode) ? run_dir(argv[i], &count) : run_file(argv[i]) == 0 ? (count++, 0) : -1))
            return 1;
    }
    printf("fuzz_regress: %d inputs, no crash\n", count);
    return 0;
}
