/* Private to the kernels: compiling one always-inline body for several instruction sets and
 * picking the clone the GEMM uses (the widest the CPU runs, or what CONVOY_GEMM narrows to). */
#ifndef CONVOY_KERNELS_ISA_H
#define CONVOY_KERNELS_ISA_H

#include <string.h>

#include "convoy/kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
/* static void NAME_generic/_avx2/_avx512 PARAMS calling G, A2 and A512 with ARGS, each compiled
 * for its instruction set, and NAME_pick() returning the one for this CPU */
#define CV_ISA_CLONES3(NAME, PARAMS, G, A2, A512, ARGS)                                          \
    static void NAME##_generic PARAMS { G ARGS; }                                               \
    __attribute__((target("avx2,fma"))) static void NAME##_avx2 PARAMS { A2 ARGS; }            \
    __attribute__((target("avx512f"))) static void NAME##_avx512 PARAMS { A512 ARGS; }         \
    typedef void(*NAME##_fn) PARAMS;                                                            \
    static NAME##_fn NAME##_pick(void)                                                          \
    {                                                                                           \
        const char *p = cv_gemm_path();                                                         \
        return strcmp(p, "avx512") == 0 ? NAME##_avx512 : strcmp(p, "avx2") == 0 ? NAME##_avx2 \
                                                                                   : NAME##_generic; \
    }
#else
#define CV_ISA_CLONES3(NAME, PARAMS, G, A2, A512, ARGS)                                          \
    static void NAME##_generic PARAMS { G ARGS; }                                               \
    typedef void(*NAME##_fn) PARAMS;                                                            \
    static NAME##_fn NAME##_pick(void) { return NAME##_generic; }
#endif
/* one always-inline BODY compiled for every instruction set */
#define CV_ISA_CLONES(NAME, PARAMS, BODY, ARGS) CV_ISA_CLONES3(NAME, PARAMS, BODY, BODY, BODY, ARGS)
/* a body written per vector width (window-vec.h): BODY_w4 on 128-bit vectors, BODY_w8 with AVX2,
 * BODY_w16 with AVX-512 */
#define CV_ISA_CLONES_W(NAME, PARAMS, BODY, ARGS) \
    CV_ISA_CLONES3(NAME, PARAMS, BODY##_w4, BODY##_w8, BODY##_w16, ARGS)

/* v = v > 0 ? v : leak v, lane by lane, as a bit select; v a GCC float vector variable of
 * type VT (ReLU with leak 0) */
#define CV_VEC_LEAKY_RELU(VT, v, leak)                                                   \
    do {                                                                                 \
        const __typeof__((v) > 0) pos_ = (v) > 0;                                        \
        const VT neg_ = (v) * (leak);                                                    \
        (v) = (VT)((pos_ & (__typeof__(pos_))(v)) | (~pos_ & (__typeof__(pos_))neg_)); \
    } while (0)

#endif
