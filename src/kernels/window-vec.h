/* The hand-vectorised window kernels, written once for a vector of VW floats and included by
 * window.c once per instruction set: VEC (VW floats) and VECI (VW int32) are GCC vector types
 * of the set's native width, VREGS its vector register count, VN(name) the name suffixed for
 * it. Block sizes follow VREGS so that each kernel's sums stay in registers: 8-pixel blocks of
 * 32 filters on AVX-512 (32 registers of 16 floats), 2-pixel blocks on AVX2 (16 of 8). */

/* 0, 1, ..., VW-1 (through a pointer: a vector return's ABI depends on the instruction set) */
static inline __attribute__((always_inline)) void VN(iota)(VECI *t)
{
    for (int i = 0; i < VW; i++) (*t)[i] = i;
}

/* *t > 0 ? *t : leak *t, lane by lane, as a bit select (through a pointer: a 64-byte vector
 * return would have an ABI that depends on the instruction set) */
static inline __attribute__((always_inline)) void VN(relu)(VEC *t, float leak)
{
    CV_VEC_LEAKY_RELU(VEC, *t, leak);
}

/* PX neighbouring output pixels (ow0 .. ow0+PX-1 of row oh, all with their whole window inside
 * the image's width) at once: each weight vector loaded once serves PX pixels. Within a window
 * row the (kw, c) taps are one contiguous run of KW C values, in x and in w alike. */
static inline __attribute__((always_inline)) void
VN(direct_block)(float *restrict o, const float *restrict xb, const float *restrict w, const float *restrict bias,
                 bool relu, float leak, int F, const cv_window *g, int oh, int ow0, const int PX, const int NV)
{
    VEC acc[8][4];
#pragma GCC unroll 8
    for (int p = 0; p < PX; p++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            acc[p][v] = (VEC){0};
            if (bias) memcpy(&acc[p][v], bias + VW * v, sizeof acc[p][v]);
        }
    const int C = g->C, sh = g->SH, s = g->SW, run = g->KW * C;
    for (int kh = 0; kh < g->KH; kh++) {
        const int ih = oh * sh - g->pad_top + kh;
        if (ih < 0 || ih >= g->H) continue;
        const float *px = xb + ((size_t)ih * g->W + ow0 * s - g->pad_left) * C;
        const float *wk = w + (size_t)kh * run * F;
        for (int j = 0; j < run; j++) {
            VEC wv[4];
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) memcpy(&wv[v], wk + (size_t)j * F + VW * v, sizeof wv[v]);
#pragma GCC unroll 8
            for (int p = 0; p < PX; p++) {
                const float a = px[(size_t)p * s * C + j];
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++) acc[p][v] += wv[v] * a;
            }
        }
    }
#pragma GCC unroll 8
    for (int p = 0; p < PX; p++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            if (relu) VN(relu)(&acc[p][v], leak);
            memcpy(o + (size_t)p * F + VW * v, &acc[p][v], sizeof acc[p][v]);
        }
}

#define DIRECT_BLOCK(PX)                                                                           \
    switch (nv) {                                                                                  \
    case 1: VN(direct_block)(q, xb, w, bias, relu, leak, F, g, oh, ow, PX, 1); break;              \
    case 2: VN(direct_block)(q, xb, w, bias, relu, leak, F, g, oh, ow, PX, 2); break;              \
    case 3: VN(direct_block)(q, xb, w, bias, relu, leak, F, g, oh, ow, PX, 3); break;              \
    default: VN(direct_block)(q, xb, w, bias, relu, leak, F, g, oh, ow, PX, 4); break;             \
    }

/* Output row oh of one sample: the pixels whose window lies inside the image's width go through
 * VN(direct_block) (zero padding, F = VW NV) in the widest blocks of 8, 4, 2 or 1 pixels whose
 * sums fit the registers, the others pixel by pixel. o is the row's first output. */
static inline __attribute__((always_inline)) void
VN(direct_row)(float *restrict o, const float *restrict xb, const float *restrict w, const cv_epilogue *ep, int F,
               const cv_window *g, bool nearest, int oh)
{
    const int nv = F % VW == 0 && F / VW <= 4 ? F / VW : 0;
    const float *bias = ep ? ep->bias : NULL;
    const bool relu = ep && ep->relu;
    const float leak = ep ? ep->leak : 0.0f;
    /* PX nv sums, nv weight vectors and a broadcast must fit the registers */
    const int fit = nv ? (VREGS - 2 - nv) / nv : 0, most = fit >= 8 ? 8 : fit >= 4 ? 4 : fit >= 2 ? 2 : 1;
    /* [lo, hi): the output columns whose window is inside the width */
    int lo = 0, hi = g->OW;
    while (lo < hi && lo * g->SW - g->pad_left < 0) lo++;
    while (hi > lo && (hi - 1) * g->SW - g->pad_left + g->KW > g->W) hi--;
    if (nearest || !nv) lo = hi = g->OW;
    for (int ow = 0; ow < g->OW;) {
        float *q = o + (size_t)ow * F;
        const int left = ow >= lo && ow < hi ? hi - ow : 0;
        if (left >= 8 && most >= 8) {
            DIRECT_BLOCK(8)
            ow += 8;
        } else if (left >= 4 && most >= 4) {
            DIRECT_BLOCK(4)
            ow += 4;
        } else if (left >= 2 && most >= 2) {
            DIRECT_BLOCK(2)
            ow += 2;
        } else if (left >= 1) {
            DIRECT_BLOCK(1)
            ow++;
        } else {
            direct_pixel(q, xb, w, ep, F, g, nearest, oh, ow);
            ow++;
        }
    }
}

/* Zero padding and F = VW NV: one tap (kh, kw, c) at a time, its F sums in registers, reading
 * x in place along each output row's valid range (no patch gathering). */
static inline __attribute__((always_inline)) void
VN(dw_taps)(float *restrict acc, const float *restrict xb, const float *restrict dyb, int F, const cv_window *g,
            const int NV)
{
    const int C = g->C, sh = g->SH, s = g->SW;
    for (int kh = 0; kh < g->KH; kh++)
        for (int kw = 0; kw < g->KW; kw++) {
            int lo = 0, hi = g->OW; /* output columns whose input column is inside the image */
            while (lo < hi && lo * s - g->pad_left + kw < 0) lo++;
            while (hi > lo && (hi - 1) * s - g->pad_left + kw >= g->W) hi--;
            for (int c = 0; c < C; c++) {
                VEC sum[4];
                for (int v = 0; v < NV; v++) sum[v] = (VEC){0};
                for (int oh = 0; oh < g->OH; oh++) {
                    const int ih = oh * sh - g->pad_top + kh;
                    if (ih < 0 || ih >= g->H) continue;
                    const float *restrict xr = xb + ((size_t)ih * g->W - g->pad_left + kw) * C + c;
                    const float *restrict d = dyb + (size_t)oh * g->OW * F;
                    for (int ow = lo; ow < hi; ow++) {
                        const float a = xr[(size_t)ow * s * C];
                        for (int v = 0; v < NV; v++) {
                            VEC dv;
                            memcpy(&dv, d + (size_t)ow * F + VW * v, sizeof dv);
                            sum[v] += dv * a;
                        }
                    }
                }
                float *q = acc + ((size_t)(kh * g->KW + kw) * C + c) * F;
                for (int v = 0; v < NV; v++) {
                    VEC t;
                    memcpy(&t, q + VW * v, sizeof t);
                    t += sum[v];
                    memcpy(q + VW * v, &t, sizeof t);
                }
            }
        }
}

/* A receptive field of KK values (at most 12) and F = VW NV filters, all KK x F sums in
 * registers: each output pixel's dy is loaded once and serves every tap. Pixels whose window
 * crosses the border gather their patch through src_coord (zero or nearest padding). */
static inline __attribute__((always_inline)) void
VN(dw_allt_k)(float *restrict acc, const float *restrict xb, const float *restrict dyb, const cv_window *g,
              bool nearest, bool bias, const int KK, const int NV)
{
    const int C = g->C, sh = g->SH, s = g->SW, F = VW * NV;
    int off[12];
    for (int kh = 0, k = 0; kh < g->KH; kh++)
        for (int kw = 0; kw < g->KW; kw++)
            for (int c = 0; c < C; c++) off[k++] = (kh * g->W + kw) * C + c;
    VEC sum[12][2], bsum[2];
    for (int v = 0; v < NV; v++) bsum[v] = (VEC){0};
    for (int k = 0; k < KK; k++)
        for (int v = 0; v < NV; v++) sum[k][v] = (VEC){0};
    for (int oh = 0; oh < g->OH; oh++) {
        const int ih0 = oh * sh - g->pad_top;
        const bool rows_in = ih0 >= 0 && ih0 + g->KH <= g->H;
        for (int ow = 0; ow < g->OW; ow++) {
            const int iw0 = ow * s - g->pad_left;
            float patch[12] = {0};
            if (rows_in && iw0 >= 0 && iw0 + g->KW <= g->W) {
                const float *px = xb + ((size_t)ih0 * g->W + iw0) * C;
                for (int k = 0; k < KK; k++) patch[k] = px[off[k]];
            } else {
                for (int kh = 0, k = 0; kh < g->KH; kh++) {
                    const int ih = src_coord(oh, kh, s, g->pad_top, g->H, nearest);
                    for (int kw = 0; kw < g->KW; kw++) {
                        const int iw = src_coord(ow, kw, s, g->pad_left, g->W, nearest);
                        for (int c = 0; c < C; c++, k++)
                            patch[k] = ih < 0 || iw < 0 ? 0.0f : xb[((size_t)ih * g->W + iw) * C + c];
                    }
                }
            }
            const float *d = dyb + ((size_t)oh * g->OW + ow) * F;
            VEC dv[2];
            for (int v = 0; v < NV; v++) memcpy(&dv[v], d + VW * v, sizeof dv[v]);
            for (int k = 0; k < KK; k++)
                for (int v = 0; v < NV; v++) sum[k][v] += dv[v] * patch[k];
            if (bias)
                for (int v = 0; v < NV; v++) bsum[v] += dv[v];
        }
    }
    if (bias) /* the bias gradient's row follows the KK rows of the kernel's */
        for (int v = 0; v < NV; v++) {
            VEC t;
            memcpy(&t, acc + (size_t)KK * F + VW * v, sizeof t);
            t += bsum[v];
            memcpy(acc + (size_t)KK * F + VW * v, &t, sizeof t);
        }
    for (int k = 0; k < KK; k++)
        for (int v = 0; v < NV; v++) {
            VEC t;
            memcpy(&t, acc + (size_t)k * F + VW * v, sizeof t);
            t += sum[k][v];
            memcpy(acc + (size_t)k * F + VW * v, &t, sizeof t);
        }
}

#define DW_ALLT_K(KK)                                                                              \
    case KK:                                                                                       \
        if (nv == 1) VN(dw_allt_k)(acc, xb, dyb, g, nearest, bias, KK, 1);                         \
        else VN(dw_allt_k)(acc, xb, dyb, g, nearest, bias, KK, 2);                                 \
        return true;

/* VN(dw_allt_k) for the shapes it takes; false for the others. */
static inline __attribute__((always_inline)) bool
VN(dw_allt)(float *restrict acc, const float *restrict xb, const float *restrict dyb, int F, const cv_window *g,
            bool nearest, bool bias)
{
    const int nv = F == VW ? 1 : F == 2 * VW ? 2 : 0;
    /* KK nv sums, nv bias sums, nv dy vectors and a broadcast must fit the registers */
    if (!nv || g->KH * g->KW * g->C * nv + 2 * nv + 1 > VREGS) return false;
    switch (g->KH * g->KW * g->C) {
        DW_ALLT_K(1) DW_ALLT_K(2) DW_ALLT_K(3) DW_ALLT_K(4) DW_ALLT_K(5) DW_ALLT_K(6)
        DW_ALLT_K(7) DW_ALLT_K(8) DW_ALLT_K(9) DW_ALLT_K(10) DW_ALLT_K(11) DW_ALLT_K(12)
    default: return false;
    }
}

/* One sample's weight gradient of a short receptive field: acc (K, F) += patch(p) dy(p)^T over
 * its output pixels, and with bias its row K (F values) += the sum of dy over them. */
static inline __attribute__((always_inline)) void
VN(dw_sample)(float *restrict acc, const float *restrict xb, const float *restrict dyb, int F, const cv_window *g,
              bool nearest, bool bias)
{
    if (VN(dw_allt)(acc, xb, dyb, F, g, nearest, bias)) return;
    const int P = g->OH * g->OW, K = g->KH * g->KW * g->C;
    if (bias)
        for (int p = 0; p < P; p++)
            for (int f = 0; f < F; f++) acc[(size_t)K * F + f] += dyb[(size_t)p * F + f];
    if (!nearest) {
        switch (F % VW == 0 && F / VW <= 4 ? F / VW : 0) {
        case 1: VN(dw_taps)(acc, xb, dyb, F, g, 1); return;
        case 2: VN(dw_taps)(acc, xb, dyb, F, g, 2); return;
        case 3: VN(dw_taps)(acc, xb, dyb, F, g, 3); return;
        case 4: VN(dw_taps)(acc, xb, dyb, F, g, 4); return;
        default: break;
        }
    }
    /* nearest padding, or a filter count off the vector width: each pixel's patch, plain loops */
    const int C = g->C;
    float patch[CV_CONV_DIRECT_MAX_K];
    for (int oh = 0; oh < g->OH; oh++)
        for (int ow = 0; ow < g->OW; ow++) {
            int k = 0;
            for (int kh = 0; kh < g->KH; kh++) {
                const int ih = src_coord(oh, kh, g->SH, g->pad_top, g->H, nearest);
                for (int kw = 0; kw < g->KW; kw++) {
                    const int iw = src_coord(ow, kw, g->SW, g->pad_left, g->W, nearest);
                    const float *px = ih < 0 || iw < 0 ? NULL : xb + ((size_t)ih * g->W + iw) * C;
                    for (int c = 0; c < C; c++) patch[k++] = px ? px[c] : 0.0f;
                }
            }
            const float *restrict d = dyb + ((size_t)oh * g->OW + ow) * F;
            for (k = 0; k < K; k++) {
                const float a = patch[k];
                float *restrict ak = acc + (size_t)k * F;
                for (int f = 0; f < F; f++) ak[f] += a * d[f];
            }
        }
}

/* Max/min pooling of one output pixel, VW channels at a time (C a multiple of VW): the running
 * winner and its offset stay in registers over the window's cells; ties keep the first cell. */
static inline __attribute__((always_inline)) void
VN(pool_vec)(float *restrict o, int32_t *restrict a, const float *restrict xb, const cv_window *g, bool max,
             int oh, int ow)
{
    const int C = g->C;
    VECI iota;
    VN(iota)(&iota);
    for (int c = 0; c < C; c += VW) {
        const int first = (oh * g->SH * g->W + ow * g->SW) * C + c;
        VEC best;
        memcpy(&best, xb + first, sizeof best);
        VECI arg = iota + first;
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = kh == 0; kw < g->KW; kw++) {
                const int base = first + (kh * g->W + kw) * C;
                VEC v;
                memcpy(&v, xb + base, sizeof v);
                const VECI win = max ? v > best : v < best;
                best = (VEC)((win & (VECI)v) | (~win & (VECI)best));
                arg = (win & (iota + base)) | (~win & arg);
            }
        memcpy(o + c, &best, sizeof best);
        memcpy(a + c, &arg, sizeof arg);
    }
}

/* One output pixel of a pooling window: window cells outer, channels inner, written as selects
 * so the channel loop vectorises; ties keep the first cell in (kh, kw) order. */
static inline __attribute__((always_inline)) void
VN(pool_pixel)(float *restrict o, int32_t *restrict a, const float *restrict xb, const cv_window *g,
               cv_pool_kind kind, int oh, int ow)
{
    const int C = g->C;
    if (a && kind != CV_POOL_AVG && C % VW == 0) {
        VN(pool_vec)(o, a, xb, g, kind == CV_POOL_MAX, oh, ow);
        return;
    }
    for (int kh = 0; kh < g->KH; kh++)
        for (int kw = 0; kw < g->KW; kw++) {
            const int base = ((oh * g->SH + kh) * g->W + ow * g->SW + kw) * C;
            const float *restrict v = xb + base;
            if (kh == 0 && kw == 0) {
                for (int c = 0; c < C; c++) o[c] = v[c];
                if (a)
                    for (int c = 0; c < C; c++) a[c] = base + c;
            } else if (kind == CV_POOL_AVG) {
                for (int c = 0; c < C; c++) o[c] += v[c];
            } else if (kind == CV_POOL_MAX) {
                for (int c = 0; c < C; c++) {
                    const bool win = v[c] > o[c];
                    o[c] = win ? v[c] : o[c];
                    a[c] = win ? base + c : a[c];
                }
            } else {
                for (int c = 0; c < C; c++) {
                    const bool win = v[c] < o[c];
                    o[c] = win ? v[c] : o[c];
                    a[c] = win ? base + c : a[c];
                }
            }
        }
    if (kind == CV_POOL_AVG) {
        const float inv_area = 1.0f / (float)(g->KH * g->KW);
        for (int c = 0; c < C; c++) o[c] *= inv_area;
    }
}

/* Max/min pool backward for non-overlapping windows (stride = pool), one sample, writing every
 * element of dxb once in order: a cell gets its window's gradient where it won (times the ReLU
 * derivative when yb, the pool's output, is given: the winner's value decides), else 0. Rows and
 * columns no window covers get 0. No clearing pass, no scatter: all loops are contiguous and
 * vectorise. */
static inline __attribute__((always_inline)) void
VN(pool_bwd_tiled)(float *restrict dxb, const float *restrict dout, const int32_t *restrict arg,
                   const float *restrict yb, float leak, const cv_window *g)
{
    const int C = g->C, KH = g->KH, KW = g->KW;
    for (int ih = 0; ih < g->H; ih++) {
        const int oh = ih / KH;
        float *restrict drow = dxb + (size_t)ih * g->W * C;
        int iw = 0;
        if (oh < g->OH)
            for (int ow = 0; ow < g->OW; ow++)
                for (int kw = 0; kw < KW; kw++, iw++) {
                    const int base = (ih * g->W + iw) * C;
                    const size_t o = ((size_t)oh * g->OW + ow) * C;
                    float *restrict d = drow + (size_t)iw * C;
                    if (C % VW == 0) { /* VW channels per step, one compare for the winners */
                        VECI iota;
                        VN(iota)(&iota);
                        for (int c = 0; c < C; c += VW) {
                            VEC gv, y;
                            VECI at;
                            memcpy(&gv, dout + o + c, sizeof gv);
                            memcpy(&at, arg + o + c, sizeof at);
                            if (yb) {
                                memcpy(&y, yb + o + c, sizeof y);
                                const VECI pos = y > 0.0f;
                                const VEC neg = gv * leak;
                                gv = (VEC)((pos & (VECI)gv) | (~pos & (VECI)neg));
                            }
                            const VECI won = at == iota + (base + c);
                            const VEC r = (VEC)(won & (VECI)gv);
                            memcpy(d + c, &r, sizeof r);
                        }
                    } else if (yb) {
                        for (int c = 0; c < C; c++) {
                            const float gv = yb[o + c] > 0.0f ? dout[o + c] : leak * dout[o + c];
                            d[c] = arg[o + c] == base + c ? gv : 0.0f;
                        }
                    } else {
                        for (int c = 0; c < C; c++) d[c] = arg[o + c] == base + c ? dout[o + c] : 0.0f;
                    }
                }
        for (; iw < g->W; iw++) /* columns (or whole rows) outside every window */
            for (int c = 0; c < C; c++) drow[(size_t)iw * C + c] = 0.0f;
    }
}


/* ---- a first conv2d and the 2x2 max/min pool after it, as one kernel ------------------------ */

/* Q neighbouring 2x2 windows (pooled pixels pw0 .. pw0+Q-1 of pooled row ph) over a direct
 * conv2d's output (no padding, KH window rows of RUN = KW C values), NV vectors of its F
 * filters from cg: the 4Q conv pixels' sums stay in registers and are summed as
 * VN(direct_block) sums them (bias, then the taps in order); only each window's winner (first
 * cell on ties, after the activation) and its offset in the conv output (the pool's arg) are
 * stored: the conv output itself is never written. */
static inline __attribute__((always_inline)) void
VN(cpool_block)(float *restrict o, int32_t *restrict arg, const float *restrict xb, const float *restrict w,
                const cv_epilogue *ep, bool max, int F, const cv_window *g, int OWp, int ph, int pw0, int cg,
                const int Q, const int NV, const int KH, const int RUN)
{
    VEC acc[4][4][2]; /* [window][cell (row-major)][vector] */
#pragma GCC unroll 4
    for (int q = 0; q < Q; q++)
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++)
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++) {
                acc[q][c][v] = (VEC){0};
                if (ep && ep->bias) memcpy(&acc[q][c][v], ep->bias + cg + VW * v, sizeof acc[q][c][v]);
            }
    const int C = g->C, s = g->SH; /* SH == SW (cv_conv_pool_fits) */
    const size_t step = (size_t)s * C; /* one conv pixel to the next along a row of x */
#pragma GCC unroll 3
    for (int kh = 0; kh < KH; kh++) {
        const float *r0 = xb + ((size_t)(2 * ph * s + kh) * g->W + (size_t)2 * pw0 * s) * C;
        const float *r1 = r0 + (size_t)s * g->W * C; /* the window's second conv row */
        const float *wk = w + (size_t)kh * RUN * F + cg;
#pragma GCC unroll 6
        for (int j = 0; j < RUN; j++) {
            VEC wv[2];
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++) memcpy(&wv[v], wk + (size_t)j * F + VW * v, sizeof wv[v]);
#pragma GCC unroll 4
            for (int q = 0; q < Q; q++) {
                const float a0 = r0[(2 * q) * step + j], a1 = r0[(2 * q + 1) * step + j];
                const float a2 = r1[(2 * q) * step + j], a3 = r1[(2 * q + 1) * step + j];
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++) {
                    acc[q][0][v] += wv[v] * a0;
                    acc[q][1][v] += wv[v] * a1;
                    acc[q][2][v] += wv[v] * a2;
                    acc[q][3][v] += wv[v] * a3;
                }
            }
        }
    }
    VECI iota;
    VN(iota)(&iota);
    const bool relu = ep && ep->relu, leak0 = !relu || ep->leak == 0.0f;
    const int rowF = g->OW * F, cell[4] = {0, F, rowF, rowF + F}; /* the cells' offsets */
#pragma GCC unroll 4
    for (int q = 0; q < Q; q++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) {
            const VECI first = iota + (2 * ph * rowF + 2 * (pw0 + q) * F + cg + VW * v);
            VEC best = acc[q][0][v];
            VECI at = first;
            if (max && leak0) {
                /* max of the raw sums, then the activation: with ReLU every non-positive value
                 * becomes a zero no later cell beats, so such a window's result is cell 0's */
#pragma GCC unroll 3
                for (int c = 1; c < 4; c++) {
                    const VECI win = acc[q][c][v] > best;
                    best = (VEC)((win & (VECI)acc[q][c][v]) | (~win & (VECI)best));
                    at = (win & (first + cell[c])) | (~win & at);
                }
                if (relu) {
                    const VECI pos = best > 0.0f;
                    const VEC zero = acc[q][0][v] * 0.0f; /* ReLU's value for it, sign included */
                    best = (VEC)((pos & (VECI)best) | (~pos & (VECI)zero));
                    at = (pos & at) | (~pos & first);
                }
            } else { /* leaky ReLU can round two values to one: the activation first, cell by cell */
                if (relu) VN(relu)(&best, ep->leak);
#pragma GCC unroll 3
                for (int c = 1; c < 4; c++) {
                    VEC t = acc[q][c][v];
                    if (relu) VN(relu)(&t, ep->leak);
                    const VECI win = max ? t > best : t < best;
                    best = (VEC)((win & (VECI)t) | (~win & (VECI)best));
                    at = (win & (first + cell[c])) | (~win & at);
                }
            }
            const size_t to = ((size_t)ph * OWp + pw0 + q) * F + cg + VW * v;
            memcpy(o + to, &best, sizeof best);
            memcpy(arg + to, &at, sizeof at);
        }
}

#define CPOOL_BLOCK(Q)                                                                              \
    if (nv == 2) VN(cpool_block)(o, arg, xb, w, ep, max, F, g, OWp, ph, pw, cg, Q, 2, KH, RUN);      \
    else VN(cpool_block)(o, arg, xb, w, ep, max, F, g, OWp, ph, pw, cg, Q, 1, KH, RUN);

/* Pooled row ph of one sample (OWp windows), every filter (F a multiple of VW), in blocks of
 * windows whose sums fit the registers. */
static inline __attribute__((always_inline)) void
VN(cpool_row_k)(float *restrict o, int32_t *restrict arg, const float *restrict xb, const float *restrict w,
                const cv_epilogue *ep, bool max, int F, const cv_window *g, int OWp, int ph, const int KH,
                const int RUN)
{
    const int nv = (F / VW) % 2 == 0 ? 2 : 1;
    /* 4 Q nv sums, nv weight vectors and the broadcasts must fit */
    const int most = 16 * nv + nv + 2 <= VREGS ? 4 : 8 * nv + nv + 2 <= VREGS ? 2 : 1;
    for (int cg = 0; cg < F; cg += nv * VW)
        for (int pw = 0; pw < OWp;) {
            if (OWp - pw >= 4 && most >= 4) {
                CPOOL_BLOCK(4)
                pw += 4;
            } else if (OWp - pw >= 2 && most >= 2) {
                CPOOL_BLOCK(2)
                pw += 2;
            } else {
                CPOOL_BLOCK(1)
                pw++;
            }
        }
}
#undef CPOOL_BLOCK

/* The windows cv_conv_pool_fits takes: 3x3 on one channel, 2x2 on up to three. */
static inline __attribute__((always_inline)) void
VN(cpool_row)(float *restrict o, int32_t *restrict arg, const float *restrict xb, const float *restrict w,
              const cv_epilogue *ep, bool max, int F, const cv_window *g, int OWp, int ph)
{
    switch (g->KH * 16 + g->KW * g->C) {
    case 3 * 16 + 3: VN(cpool_row_k)(o, arg, xb, w, ep, max, F, g, OWp, ph, 3, 3); return;
    case 2 * 16 + 2: VN(cpool_row_k)(o, arg, xb, w, ep, max, F, g, OWp, ph, 2, 2); return;
    case 2 * 16 + 4: VN(cpool_row_k)(o, arg, xb, w, ep, max, F, g, OWp, ph, 2, 4); return;
    case 2 * 16 + 6: VN(cpool_row_k)(o, arg, xb, w, ep, max, F, g, OWp, ph, 2, 6); return;
    default: return;
    }
}

/* The backward of VN(cpool_row)'s pair for a first layer (no input gradient wanted): acc (K, F)
 * and its row K (the bias gradient) += one sample's weight gradient, where the conv output's
 * gradient is the pool's: the window's gradient at its winner (times the activation's
 * derivative, read off the pool output y), 0 elsewhere. It is rebuilt per conv pixel from dout,
 * y and arg, and the conv pixels are walked in raster order, as VN(dw_allt_k) walks them: the
 * same sums, without the gradient map ever being written. NV vectors of filters from cg. */
static inline __attribute__((always_inline)) void
VN(cpool_dw)(float *restrict acc, const float *restrict xb, const float *restrict dout, const int32_t *restrict arg,
             const float *restrict y, bool relu, float leak, int F, const cv_window *g, int OHp, int OWp, int cg,
             const int NV, const int KH, const int RUN)
{
    const int s = g->SH; /* SH == SW (cv_conv_pool_fits) */
    const size_t rowx = (size_t)g->W * g->C;
    VEC sum[3][6][2], bsum[2];
    VECI iota;
    VN(iota)(&iota);
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) bsum[v] = (VEC){0};
#pragma GCC unroll 3
    for (int kh = 0; kh < KH; kh++)
#pragma GCC unroll 6
        for (int j = 0; j < RUN; j++)
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++) sum[kh][j][v] = (VEC){0};
    for (int oh = 0; oh < 2 * OHp; oh++)
        for (int pw = 0; pw < OWp; pw++) {
            /* the window's gradient (times the activation's derivative) once for its two cells
             * on this row */
            const size_t o = ((size_t)(oh / 2) * OWp + pw) * F + cg;
            VEC gv[2];
            VECI at[2];
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++) {
                memcpy(&gv[v], dout + o + VW * v, sizeof gv[v]);
                memcpy(&at[v], arg + o + VW * v, sizeof at[v]);
                if (relu) {
                    VEC yv;
                    memcpy(&yv, y + o + VW * v, sizeof yv);
                    const VECI pos = yv > 0.0f;
                    const VEC neg = gv[v] * leak;
                    gv[v] = (VEC)((pos & (VECI)gv[v]) | (~pos & (VECI)neg));
                }
            }
#pragma GCC unroll 2
            for (int ow = 2 * pw; ow < 2 * pw + 2; ow++) {
                const float *px = xb + (size_t)oh * s * rowx + (size_t)ow * s * g->C;
                const int cell = (oh * g->OW + ow) * F + cg;
                VEC dv[2];
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++) {
                    const VECI won = at[v] == iota + (cell + VW * v);
                    dv[v] = (VEC)(won & (VECI)gv[v]);
                }
#pragma GCC unroll 3
                for (int kh = 0; kh < KH; kh++)
#pragma GCC unroll 6
                    for (int j = 0; j < RUN; j++) {
                        const float a = px[kh * rowx + j];
#pragma GCC unroll 2
                        for (int v = 0; v < NV; v++) sum[kh][j][v] += dv[v] * a;
                    }
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++) bsum[v] += dv[v];
            }
        }
    const int K = KH * RUN;
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) {
        float *b = acc + (size_t)K * F + cg + VW * v;
        VEC t;
        memcpy(&t, b, sizeof t);
        t += bsum[v];
        memcpy(b, &t, sizeof t);
    }
#pragma GCC unroll 3
    for (int kh = 0; kh < KH; kh++)
#pragma GCC unroll 6
        for (int j = 0; j < RUN; j++)
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++) {
                float *q = acc + (size_t)(kh * RUN + j) * F + cg + VW * v;
                VEC t;
                memcpy(&t, q, sizeof t);
                t += sum[kh][j][v];
                memcpy(q, &t, sizeof t);
            }
}

/* VN(cpool_dw) over every filter, in groups of vectors whose sums fit the registers */
static inline __attribute__((always_inline)) void
VN(cpool_dw_k)(float *restrict acc, const float *restrict xb, const float *restrict dout, const int32_t *restrict arg,
               const float *restrict y, bool relu, float leak, int F, const cv_window *g, int OHp, int OWp,
               const int KH, const int RUN)
{
    /* K nv sums, nv bias sums, nv gradient vectors, a broadcast and the masks' scratch */
    const int nv = (F / VW) % 2 == 0 && KH * RUN * 2 + 2 * 2 + 3 <= VREGS ? 2 : 1;
    for (int cg = 0; cg < F; cg += nv * VW)
        if (nv == 2) VN(cpool_dw)(acc, xb, dout, arg, y, relu, leak, F, g, OHp, OWp, cg, 2, KH, RUN);
        else VN(cpool_dw)(acc, xb, dout, arg, y, relu, leak, F, g, OHp, OWp, cg, 1, KH, RUN);
}

static inline __attribute__((always_inline)) void
VN(cpool_dw_sample)(float *restrict acc, const float *restrict xb, const float *restrict dout,
                    const int32_t *restrict arg, const float *restrict y, bool relu, float leak, int F,
                    const cv_window *g, int OHp, int OWp)
{
    switch (g->KH * 16 + g->KW * g->C) {
    case 3 * 16 + 3: VN(cpool_dw_k)(acc, xb, dout, arg, y, relu, leak, F, g, OHp, OWp, 3, 3); return;
    case 2 * 16 + 2: VN(cpool_dw_k)(acc, xb, dout, arg, y, relu, leak, F, g, OHp, OWp, 2, 2); return;
    case 2 * 16 + 4: VN(cpool_dw_k)(acc, xb, dout, arg, y, relu, leak, F, g, OHp, OWp, 2, 4); return;
    case 2 * 16 + 6: VN(cpool_dw_k)(acc, xb, dout, arg, y, relu, leak, F, g, OHp, OWp, 2, 6); return;
    default: return;
    }
}

#undef DIRECT_BLOCK
#undef DW_ALLT_K
