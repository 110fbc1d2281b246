/* Private to the kernels: compiling one always-inline body for several instruction sets and
 * picking the clone the GEMM uses (the widest the CPU runs, or what CONVOY_GEMM narrows to). */
#ifndef CONVOY_KERNELS_ISA_H
#define CONVOY_KERNELS_ISA_H

#include <stdbool.h>
#include <stdint.h>
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
/* 16 floats (and 16 int32 masks) as GCC vectors, for the AVX-512 clones that stream; CV_LD16
 * loads one from any float's address */
typedef float cv_v16 __attribute__((vector_size(64)));
typedef float cv_v16u __attribute__((vector_size(64), aligned(4), may_alias));
typedef int32_t cv_i16 __attribute__((vector_size(64)));
#define CV_LD16(p) (*(const cv_v16u *)(const void *)(p))

/* Stores that bypass the caches (non-temporal), for a pass whose output is too large to stay
 * in L2 and is written line by whole line: an ordinary store first reads the line it writes
 * into the cache (for ownership), a stream store does not. CV_STREAM_ST16 stores a vector of 16
 * floats (a GCC vector value) at p, 64-byte aligned, in an AVX-512 clone (with 8 or 4 floats a
 * vector, the passes that would take them fill a line over several stores, and part-line stream
 * stores measured slower); cv_stream_fence() makes a thread's stream stores visible before it
 * reaches a barrier (another thread or the next pass may read them). Elsewhere: ordinary
 * stores. */
enum { CV_STREAM_MIN_BYTES = 1 << 20 }; /* the outputs that take them: about a core's L2 and more */
/* whether an output of bytes at p takes them: on a 64-byte line and past CV_STREAM_MIN_BYTES
 * (the caller adds its own condition for whole lines) */
static inline bool cv_streams(const void *p, size_t bytes)
{
    return (uintptr_t)p % 64 == 0 && bytes >= CV_STREAM_MIN_BYTES;
}
#if defined(__x86_64__) && defined(__GNUC__)
#define CV_STREAM_ST16(p, v) __asm__ volatile("vmovntps %1, %0" : "=m"(*(__typeof__(+(v)) *)(void *)(p)) : "v"(v))
static inline void cv_stream_fence(void) { __asm__ volatile("sfence" ::: "memory"); }
#else
#define CV_STREAM_ST16(p, v) (*(__typeof__(+(v)) *)(void *)(p) = (v))
static inline void cv_stream_fence(void) {}
#endif

/* one always-inline BODY compiled for every instruction set */
#define CV_ISA_CLONES(NAME, PARAMS, BODY, ARGS) CV_ISA_CLONES3(NAME, PARAMS, BODY, BODY, BODY, ARGS)
/* a body written per vector width (window-vec.h): BODY_w4 on 128-bit vectors, BODY_w8 with AVX2,
 * BODY_w16 with AVX-512 */
#define CV_ISA_CLONES_W(NAME, PARAMS, BODY, ARGS) \
    CV_ISA_CLONES3(NAME, PARAMS, BODY##_w4, BODY##_w8, BODY##_w16, ARGS)

/* v = pos ? v : v leak, lane by lane, as a bit select; v a GCC float vector variable of type
 * VT, pos a mask vector (a comparison's result) of the same lanes */
#define CV_VEC_LEAKY_WHERE(VT, v, pos, leak)                                             \
    do {                                                                                 \
        const __typeof__(pos) pos_ = (pos);                                              \
        const VT neg_ = (v) * (leak);                                                    \
        (v) = (VT)((pos_ & (__typeof__(pos_))(v)) | (~pos_ & (__typeof__(pos_))neg_)); \
    } while (0)
/* v = v > 0 ? v : leak v (ReLU with leak 0) */
#define CV_VEC_LEAKY_RELU(VT, v, leak) CV_VEC_LEAKY_WHERE(VT, v, (v) > 0, leak)

/* An always-inline body NAME PARAMS (PARAMS ending in bool stream) that runs BODY: the clones'
 * wrappers of the passes that may stream, whose plain variants leave stream unused */
#define CV_STREAM_WRAP(NAME, PARAMS, BODY)                              \
    static inline __attribute__((always_inline)) void NAME PARAMS      \
    {                                                                   \
        (void)stream;                                                   \
        BODY;                                                           \
    }
/* CV_ISA_CLONES3's NAME clones and NAME_pick for a pass that may stream: PLAIN (ordinary
 * stores) run by the generic and AVX2 clones, STREAM (which may take CV_STREAM_ST16) by the
 * AVX-512 one; both statements over PARAMS, which end in bool stream */
#define CV_STREAM_CLONES(NAME, PARAMS, PLAIN, STREAM, ARGS)                                   \
    CV_STREAM_WRAP(NAME##_plain_body, PARAMS, PLAIN)                                          \
    CV_STREAM_WRAP(NAME##_stream_body, PARAMS, STREAM)                                        \
    CV_ISA_CLONES3(NAME, PARAMS, NAME##_plain_body, NAME##_plain_body, NAME##_stream_body, ARGS)

#endif
