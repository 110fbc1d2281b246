/* The Winograd F(4x4, 3x3) weight gradient (conv-winograd.c has the transforms, the forward
 * pass and the input gradient): per channel and filter G^T [ sum over blocks of (B^T d B) .*
 * (A e A^T) ] G, e the block's 4x4 output gradient (zero past the edge), as 36 GEMMs (C x blocks)
 * x (blocks x F) on the weight-gradient micro-kernel (or the products of conv-winograd-prod.c)
 * over passes of transformed inputs and output gradients. The blocks are summed in order, or in
 * fixed groups (dw_groups) whose sums are then added in group order: either way the thread
 * count never changes a bit. */
#include <string.h>

#include "kernels/conv-ukernels.h"
#include "kernels/conv-winograd.h"

enum { DW_PASS_FLOATS = 1 << 17, DW_PASS_MIN_BLOCKS = 52 };

/* The weight gradient's passes: each transforms n blocks (their inputs into V, their output
 * gradients into Z), then runs the products over them, adding to the 36 sums M (Cp, F). */
typedef struct {
    const float *x, *dy, *zeros;
    const cv_window *g;
    const cv_conv_ukernels *u;
    wino_fns fn;
    wino_dwprod_fn dwprod;
    wino_dwtile_fn dwtile;
    int C, F, Cp, per, tx, ct, ft;
    size_t vb, zb, ms; /* a block's floats in V and in Z; a product's sums in M */
} dw_plan;

/* the products' work items: one per product (dwprod) or per tile of a product's sums */
static int dw_items(const dw_plan *d) { return d->dwprod ? XI : XI * d->ct * d->ft; }

/* block t into row i of V and Z */
static void dw_block(const dw_plan *d, wino_src *src, float *V, float *Z, long t, long i)
{
    const cv_window *g = d->g;
    const float *q[WB * WB];
    long pos[WB * WB] = {0}; /* (filled where the block is at the edge) */
    size_t rs;
    const float *b = cv_wino_block_inputs(src, &rs, d->x, t, d->per, d->tx, g, d->fn.edge);
    d->fn.ins(V + i * d->vb, d->Cp, b, rs, d->C);
    const long at0 = cv_wino_block_outputs(pos, t, d->per, d->tx, d->F, g);
    if (at0 >= 0) {
        d->fn.grads(Z + i * d->zb, d->F, d->dy + at0, (size_t)g->OW * d->F, d->F);
        return;
    }
    for (int j = 0; j < WB * WB; j++) q[j] = pos[j] < 0 ? d->zeros : d->dy + pos[j];
    d->fn.grad(Z + i * d->zb, d->F, q, d->F);
}

/* work item j of the products over the m blocks in V and Z, into M (set: the first pass) */
static void dw_item(const dw_plan *d, float *M, const float *V, const float *Z, int m, bool set, int j)
{
    const int F = d->F, mr = d->u->mr, nr = d->u->nr;
    if (d->dwprod) {
        d->dwprod(M + j * d->ms, V + (size_t)j * d->Cp, d->vb, Z + (size_t)j * F, d->zb, m, set);
        return;
    }
    const int xi = j / (d->ct * d->ft), ci = j % (d->ct * d->ft) / d->ft, fi = j % d->ft;
    const int rows = d->C - ci * mr < mr ? d->C - ci * mr : mr;
    float *mt = M + xi * d->ms + (size_t)ci * mr * F + (size_t)fi * nr;
    const float *vt = V + (size_t)xi * d->Cp + (size_t)ci * mr, *zt = Z + (size_t)xi * F + (size_t)fi * nr;
    if (d->dwtile) d->dwtile(mt, F, vt, d->vb, zt, d->zb, m, set, rows);
    else d->u->dw(vt, 1, 0, m, (long)d->vb, zt, (int)d->zb, mt, F, rows, set, NULL);
}

/* n blocks a pass (of vb + zb floats each, within DW_PASS_FLOATS, but at least
 * DW_PASS_MIN_BLOCKS) over T blocks, passes of equal size. Each product's tile loads and stores
 * its sums once a pass: at 64 and 128 channels DW_PASS_FLOATS holds only 26 and 13 blocks, and
 * passes of 52 (past L2 at 128 channels) measured faster: 64 x 8x8x128 -> 128 alone 5.08 ->
 * 4.10 ms, 16x16x64 -> 64 4.36 -> 4.05 (1 thread, best of 5); VGG-BN's step 68.5 -> 66.6 ms
 * (its three wide convs' backward 9.1 -> 8.3, 8.8 -> 8.4, 4.5 -> 4.3 ms), ResNet-20's 94.6 ->
 * 93.4 (interleaved, per-layer best of 4-5). 32 channels take 52 by the bound already. */
static long dw_pass_blocks(const dw_plan *d, long T, long *passes)
{
    long n = DW_PASS_FLOATS / (long)(d->vb + d->zb);
    n = n < DW_PASS_MIN_BLOCKS ? DW_PASS_MIN_BLOCKS : n > T ? (T > 0 ? T : 1) : n;
    *passes = (T + n - 1) / n;
    return *passes ? (T + *passes - 1) / *passes : 1;
}

/* V and Z for n blocks, the rows of V past C zero (their sums are dropped), and a zero row */
static float *dw_buffers(const dw_plan *d, long n, const float **zeros)
{
    const int wide = d->C > d->F ? d->C : d->F;
    float *V = cv_scratch(CV_SCRATCH_WINOGRAD, sizeof(float) * (n * (d->vb + d->zb) + (size_t)wide));
    if (!V) return NULL;
    float *z = V + n * (d->vb + d->zb);
    memset(z, 0, sizeof(float) * (size_t)wide);
    *zeros = z;
    for (long i = 0; i < n; i++)
        for (int xi = 0; xi < XI; xi++)
            for (int c = d->C; c < d->Cp; c++) V[i * d->vb + (size_t)xi * d->Cp + c] = 0.0f;
    return V;
}

/* The block groups of the weight gradient (0: none): where a product's sums are small (C F up
 * to 2048, as 16 or 32 channels into 16 to 64 filters) each thread sums whole groups of blocks,
 * every group into sums of its own, which are then added in group order: no barrier per pass,
 * and no thread reading the blocks another transformed (the shared passes, 1 -> 2 threads, 64 x
 * 32x32x16 -> 16: 1.39 -> 1.23 ms, 32 -> 32 channels 5.1 -> 3.5; grouped 0.70-0.75 and 2.4-2.9
 * ms, the same on 1 thread within noise). A group is whole passes, one per 512 blocks and at most
 * 8 (16 cost 5 % on 1 thread): the count depends on the sizes alone, never on the threads. */
enum { DW_GROUP_BLOCKS = 512, DW_GROUPS_MAX = 8, DW_GROUP_CF = 2048 };
static int dw_groups(const dw_plan *d, long T, long passes)
{
    if ((long)d->Cp * d->F > DW_GROUP_CF) return 0;
    long G = T / DW_GROUP_BLOCKS;
    G = G > passes ? passes : G;
    return G < 2 ? 0 : G > DW_GROUPS_MAX ? DW_GROUPS_MAX : (int)G;
}

int cv_conv_wino_dw(float *dw, const float *x, const float *dy, int B, int F, const cv_window *g,
                    const cv_chan_map *map)
{
    if (map && !cv_conv_wino_maps(g)) return -1;
    const cv_conv_ukernels *u = cv_conv_ukernels_for(F);
    const int C = g->C, mr = u->mr, nr = u->nr, Cp = (C + mr - 1) / mr * mr; /* C in whole tiles */
    const int tx = cv_wino_blocks_over(g->OW), per = cv_wino_blocks_over(g->OH) * tx, P = g->OH * g->OW;
    const long T = (long)B * per;
    /* each block's transformed input (36, Cp) and output gradient (36, F), one line more each
     * so that a product's rows are not 4 KiB apart */
    dw_plan d = {.x = x, .dy = dy, .g = g, .u = u, .fn = cv_wino_fns(), .dwprod = cv_wino_dwprod(C, F),
                 .dwtile = cv_wino_dwtile(F, mr, nr), .C = C, .F = F, .Cp = Cp, .per = per, .tx = tx,
                 .ct = Cp / mr, .ft = F / nr, .vb = (size_t)XI * Cp + 16, .zb = (size_t)XI * F + 16,
                 .ms = (size_t)Cp * F};
    long passes;
    const long n = dw_pass_blocks(&d, T, &passes); /* a group: whole passes */
    const int G = dw_groups(&d, T, passes), items = dw_items(&d);
    const wino_dwout_fn dwout = cv_wino_dwout();
    /* the 36 sums (Cp, F), one set per group */
    float *M = cv_scratch(CV_SCRATCH_WINOGRAD_W, sizeof(float) * XI * d.ms * (size_t)(G ? G : 1));
    if (!M) return -1;
    float *V = NULL;
    const float *zeros = NULL;
    if (!G && !(V = dw_buffers(&d, n, &zeros))) return -1;
    d.zeros = zeros;
    int failed = 0;
#pragma omp parallel reduction(| : failed) if (cv_conv_fork_worth(2.0 * B * P * F * 9.0 * C))
    {
        size_t ns;
        wino_src src = cv_wino_src_plan(g, cv_wino_blocks_over(g->OH), tx, &ns);
        src.buf = cv_scratch(CV_SCRATCH_WINOGRAD_BLOCK, sizeof(float) * ns);
        src.map = map;
        dw_plan dt = d;
        float *Vt = G ? dw_buffers(&dt, n, &dt.zeros) : V; /* (grouped: the thread's own) */
        if (!src.buf || !Vt) failed = 1;
        if (G) {
#pragma omp for schedule(static)
            for (int k = 0; k < G; k++) { /* group k: passes [passes k / G, passes (k + 1) / G) */
                const long g0 = passes * k / G * n, end = passes * (k + 1) / G * n, g1 = end < T ? end : T;
                for (long t0 = g0; t0 < g1 && src.buf && Vt; t0 += n) {
                    const int m = (int)(g1 - t0 < n ? g1 - t0 : n);
                    for (int i = 0; i < m; i++) dw_block(&dt, &src, Vt, Vt + n * dt.vb, t0 + i, i);
                    for (int j = 0; j < items; j++)
                        dw_item(&dt, M + (size_t)k * XI * dt.ms, Vt, Vt + n * dt.vb, m, t0 == g0, j);
                }
            }
        } else {
            for (long t0 = 0; t0 < T; t0 += n) {
                const int m = (int)(T - t0 < n ? T - t0 : n);
#pragma omp for schedule(static)
                for (int i = 0; i < m; i++)
                    if (src.buf) dw_block(&dt, &src, V, V + n * dt.vb, t0 + i, i);
#pragma omp for schedule(static)
                for (int j = 0; j < items; j++) dw_item(&dt, M, V, V + n * dt.vb, m, t0 == 0, j);
            }
        }
    }
    if (failed) return -1; /* nothing added */
    const size_t all = XI * d.ms;
#pragma omp parallel
    {
        if (G > 1) { /* the groups' sums into the first, in group order */
#pragma omp for schedule(static)
            for (size_t e = 0; e < all; e++)
                for (int k = 1; k < G; k++) M[e] += M[(size_t)k * all + e];
        }
#pragma omp for schedule(static)
        for (int c = 0; c < C; c++) dwout(dw, M, d.ms, c, c + 1, C, F);
    }
    return 0;
}
