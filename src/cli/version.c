/* `convoy --version`: the version (CMakeLists.txt's project VERSION) and the facts of this
 * build that explain its speed and behaviour: OpenMP, the GEMM kernel the CPU gets, and the
 * MPI, HDF5, libpng and zlib libraries it runs with. Needs no MPI_Init. */
#include <hdf5.h>
#include <png.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli/cli.h"
#include "convoy/kernels.h"
#include "convoy/version.h"

#ifndef CONVOY_BUILD_TYPE
#define CONVOY_BUILD_TYPE "unknown"
#endif

void cli_version(void)
{
    printf("convoy %s\n", cv_version());
    printf("  build:   %s, %s, C%ld", CONVOY_BUILD_TYPE,
#ifdef __VERSION__
           "cc " __VERSION__,
#else
           "unknown compiler",
#endif
           (__STDC_VERSION__ / 100) % 100);
#if defined(__SANITIZE_ADDRESS__)
    printf(", AddressSanitizer");
#endif
    printf("\n");
#ifdef _OPENMP
    printf("  openmp:  on (OpenMP %d), %d threads per rank by default\n", _OPENMP, omp_get_max_threads());
#else
    printf("  openmp:  off (built with CONVOY_OPENMP=OFF: one thread per rank)\n");
#endif
    printf("  gemm:    %s%s\n", cv_gemm_path(),
           strcmp(cv_gemm_path(), "openblas") == 0 ? " (the -DCONVOY_BLAS=openblas comparison build)"
                                                  : " micro-kernel on this CPU (CONVOY_GEMM=avx2 or generic asks for a narrower one)");
    cv_err perr;
    if (cv_precision_check(CV_PRECISION_BF16, "--precision bf16", &perr) == 0)
        printf("  bf16:    --precision bf16 on %s\n", cv_bf16_native() ? "AVX512_BF16 (VDPBF16PS)" : "fp32 FMAs (CONVOY_BF16=emulate)");
    else
        printf("  bf16:    not here: %s\n", perr.msg);

    char lib[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0, major = 0, minor = 0;
    MPI_Get_version(&major, &minor); /* both may be called before MPI_Init */
    MPI_Get_library_version(lib, &len);
    lib[strcspn(lib, ",\n")] = '\0';
    printf("  mpi:     MPI %d.%d, %s\n", major, minor, lib);

    unsigned hmaj = 0, hmin = 0, hrel = 0;
    H5get_libversion(&hmaj, &hmin, &hrel);
#ifdef H5_HAVE_PARALLEL
    const char *parallel = "parallel";
#else
    const char *parallel = "serial";
#endif
    printf("  hdf5:    %u.%u.%u (%s)\n", hmaj, hmin, hrel, parallel);
    printf("  libpng:  %s, zlib %s\n", png_get_libpng_ver(NULL), zlibVersion());
}
