// The full softmax classifier's elementwise passes and the dense Adam of its
// shard (see ckernels_classifier.h for what each computes).
//
// Same bits on every x86-64: each hot function is compiled for AVX-512F,
// AVX2 and the baseline and picked at load time (target_clones), but the
// code is written with 16-lane vectors whatever the width (one zmm, two ymm
// or four xmm registers), reduces lanes to Double in lane order, and keeps
// a·b + c as two roundings (contraction off: the AVX-512 clone would fuse
// them into FMAs, the baseline one could not). The exp is the Swift
// `Kernels.exp8` formula operation for operation.

#include "ckernels_classifier.h"
#include <float.h>
#include <math.h>
#include <string.h>

#pragma clang fp contract(off)

#if defined(__x86_64__) && defined(__linux__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define CK_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef CK_CLONES
#define CK_CLONES
#endif
#define CK_INLINE static inline __attribute__((always_inline))

typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
typedef float vfu __attribute__((vector_size(64), aligned(4)));
#define LANES 16

// Helpers are macros: a function taking or returning a 64-byte vector has a
// different ABI in each clone, which clang refuses even when it inlines.
#define splat(a) ((vf){0} + (float)(a))
#define load(p) (*(const vfu *)(p))
#define store(p, x) (*(vfu *)(p) = (x))
// mask ? a : b, lane by lane (C has no vector ?:).
#define sel(mask, a, b) ((vf)((((vi)(a)) & (mask)) | (((vi)(b)) & ~(mask))))
#define vabs(x) ((vf)(((vi)(x)) & 0x7fffffff))

// Cephes' expf constants, as Kernels.exp8 has them.
#define EXP_LO (-87.3f)
#define EXP_HI (88.7f)
#define LOG2E (1.4426950408889634f)
#define C1 (0.693359375f)
#define C2 (-2.1219444005469058e-4f)
#define P0 (1.9875691500e-4f)
#define P1 (1.3981999507e-3f)
#define P2 (8.3334519073e-3f)
#define P3 (4.1665795894e-2f)
#define P4 (1.6666665459e-1f)
#define P5 (5.0000001201e-1f)
// t + 1.5·2²³ − 1.5·2²³ rounds |t| < 2²² to the nearest integer, ties to even
// (what `.rounded(.toNearestOrEven)` gives), without SSE4.1's roundps.
#define ROUND_MAGIC (12582912.0f)

/// e^x for 16 lanes. Clamping by compare-and-select (not fmin/fmax) so that a
/// NaN logit stays NaN and reaches the loss's finite check.
#define exp16(x_) ({                                                   \
    vf x = (x_);                                                       \
    const vf lo = splat(EXP_LO), hi = splat(EXP_HI);                   \
    vi tooSmall = x < lo;                                              \
    vf xc = sel(tooSmall, lo, x);                                      \
    xc = sel(xc > hi, hi, xc);                                         \
    vf n = (xc * LOG2E + ROUND_MAGIC) - ROUND_MAGIC;                   \
    vf r = xc - n * C1;                                                \
    r = r - n * C2;                                                    \
    vf p = splat(P0);                                                  \
    p = p * r + P1;                                                    \
    p = p * r + P2;                                                    \
    p = p * r + P3;                                                    \
    p = p * r + P4;                                                    \
    p = p * r + P5;                                                    \
    p = p * (r * r) + r + 1.0f;                                        \
    vi e = (__builtin_convertvector(n, vi) + 127) << 23;               \
    sel(tooSmall, splat(0), p * (vf)e);                                \
})

/// The same formula on one float (row tails), so that a value does not
/// depend on where a tile boundary puts it.
CK_INLINE float exp1(float x) {
    int tooSmall = x < EXP_LO;
    float xc = tooSmall ? EXP_LO : x;
    xc = xc > EXP_HI ? EXP_HI : xc;
    float n = (xc * LOG2E + ROUND_MAGIC) - ROUND_MAGIC;
    float r = xc - n * C1;
    r = r - n * C2;
    float p = P0;
    p = p * r + P1;
    p = p * r + P2;
    p = p * r + P3;
    p = p * r + P4;
    p = p * r + P5;
    p = p * (r * r) + r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &e, 4);
    return tooSmall ? 0.0f : p * scale;
}

float ckc_exp(float x) { return exp1(x); }

// Lanes into Double in lane order.
#define lanesum(x_) ({ vf x = (x_); double s_ = 0; for (int k_ = 0; k_ < LANES; k_++) s_ += (double)x[k_]; s_; })

CK_CLONES
void ckc_softmax_tile_stats(const float *logits, long ld, long rows, long cols,
                            float *rowMax, double *sumExp, double *sumExpShifted) {
    for (long r = 0; r < rows; r++) {
        const float *x = logits + r * ld;
        // Pass 1: the tile's max (order-free: max is exact).
        vf vm = splat(-INFINITY);
        long j = 0;
        for (; j + LANES <= cols; j += LANES) {
            vf a = load(x + j);
            vm = sel(a > vm, a, vm);
        }
        float tm = -INFINITY;
        for (int k = 0; k < LANES; k++) tm = vm[k] > tm ? vm[k] : tm;
        for (; j < cols; j++) tm = x[j] > tm ? x[j] : tm;
        float m = rowMax[r];
        if (tm > m) {
            // Rescale the sums so far to the new shift: e^{ℓ−m} = e^{ℓ−m′}·e^{m′−m}.
            double delta = (double)m - (double)tm, f = exp(delta);
            sumExpShifted[r] = f * (sumExpShifted[r] + delta * sumExp[r]);
            sumExp[r] = f * sumExp[r];
            m = tm;
            rowMax[r] = m;
        }
        // Pass 2, the tile still in cache: S and A relative to m.
        const vf vmv = splat(m);
        vf vs = splat(0), va = splat(0);
        for (j = 0; j + LANES <= cols; j += LANES) {
            vf d = load(x + j) - vmv;
            vf e = exp16(d);
            vs += e;
            va += e * d;
        }
        double s = lanesum(vs), a = lanesum(va);
        for (; j < cols; j++) {
            float d = x[j] - m, e = exp1(d);
            s += (double)e;
            a += (double)(e * d);
        }
        sumExp[r] += s;
        sumExpShifted[r] += a;
    }
}

/// Columns [j0, j1) of one row, none of them the target; kind is a constant
/// at each call, so each kind gets its own loop.
CK_INLINE void gradSpan(int kind, const float *x, long j0, long j1, float m, float inv, float cs, float mi, float neg,
                        float *gc, float *gm, float *gb, float *labsLanes, double *tail) {
    const vf vm = splat(m), vinv = splat(inv), vcs = splat(cs), vmi = splat(mi), vneg = splat(neg);
    vf labs = load(labsLanes);
    long j = j0;
    for (; j + LANES <= j1; j += LANES) {
        vf l = load(x + j);
        vf p = exp16(l - vm) * vinv;
        vf g = p * vcs;
        store(gc + j, g);
        store(gb + j, load(gb + j) + g);
        labs += vabs(g);
        if (kind == 1) store(gm + j, (vneg * p) * (l - vmi));
        if (kind == 2) store(gm + j, vmi * p);
    }
    store(labsLanes, labs);
    for (; j < j1; j++) {
        float l = x[j], p = exp1(l - m) * inv, g = p * cs;
        gc[j] = g;
        gb[j] = gb[j] + g;
        *tail += (double)fabsf(g);
        if (kind == 1) gm[j] = (neg * p) * (l - mi);
        if (kind == 2) gm[j] = mi * p;
    }
}

CK_INLINE double gradRows(int kind, const float *logits, long ldl, long rows, long cols,
                          const float *rowMax, const float *invSum, const int32_t *targets, long colBase,
                          float cs, float *gce, long ldg, const float *miRow, float miScale, float *gmi, long ldm,
                          float *gb) {
    double l1 = 0;
    const float neg = -miScale;
    for (long r = 0; r < rows; r++) {
        const float *x = logits + r * ldl;
        float *gc = gce + r * ldg, *gm = kind ? gmi + r * ldm : 0;
        const float m = rowMax[r], inv = invSum[r], mi = kind ? miRow[r] : 0;
        float labs[LANES] = {0};
        double tail = 0;
        long e = (long)targets[r] - colBase;
        if (e >= 0 && e < cols) {
            gradSpan(kind, x, 0, e, m, inv, cs, mi, neg, gc, gm, gb, labs, &tail);
            // The target column: p − 1, scaled as p·s − s.
            float l = x[e], p = exp1(l - m) * inv, g = p * cs - cs;
            gc[e] = g;
            gb[e] = gb[e] + g;
            tail += (double)fabsf(g);
            if (kind == 1) gm[e] = (neg * p) * (l - mi);
            if (kind == 2) gm[e] = mi * p - mi;
            gradSpan(kind, x, e + 1, cols, m, inv, cs, mi, neg, gc, gm, gb, labs, &tail);
        } else {
            gradSpan(kind, x, 0, cols, m, inv, cs, mi, neg, gc, gm, gb, labs, &tail);
        }
        double rowAbs = tail;
        for (int k = 0; k < LANES; k++) rowAbs += (double)labs[k];
        l1 += rowAbs;
    }
    return l1;
}

CK_CLONES
double ckc_softmax_tile_grad(const float *logits, long ldl, long rows, long cols,
                             const float *rowMax, const float *invSum, const int32_t *targets, long colBase,
                             float ceScale, float *gce, long ldg,
                             int miKind, const float *miRow, float miScale, float *gmi, long ldm,
                             float *gbias, int accumulateBias) {
    if (!accumulateBias) memset(gbias, 0, (size_t)cols * sizeof(float));
    switch (miKind) {
    case 1: return gradRows(1, logits, ldl, rows, cols, rowMax, invSum, targets, colBase, ceScale, gce, ldg, miRow,
                            miScale, gmi, ldm, gbias);
    case 2: return gradRows(2, logits, ldl, rows, cols, rowMax, invSum, targets, colBase, ceScale, gce, ldg, miRow,
                            miScale, gmi, ldm, gbias);
    default: return gradRows(0, logits, ldl, rows, cols, rowMax, invSum, targets, colBase, ceScale, gce, ldg, miRow,
                             miScale, gmi, ldm, gbias);
    }
}

CK_CLONES
double ckc_abs_sum(const float *x, long n) {
    vf acc = splat(0);
    double s = 0;
    long j = 0, since = 0;
    for (; j + LANES <= n; j += LANES) {
        acc += vabs(load(x + j));
        // Into Double every 4096 elements: long buffers keep their precision.
        if (++since == 256) { s += lanesum(acc); acc = splat(0); since = 0; }
    }
    s += lanesum(acc);
    for (; j < n; j++) s += (double)fabsf(x[j]);
    return s;
}

