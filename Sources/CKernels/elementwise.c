/*
 * Elementwise kernels of the VAE path (see include/ckernels_elementwise.h).
 *
 * Why C: Swift here compiles for baseline x86-64 (SSE2, 4 lanes) and the
 * package takes no unsafeFlags; clang's target_clones builds each hot function
 * for AVX-512F, AVX2 and the baseline, and the loader's resolver picks the
 * widest the CPU has. The loops are plain C written so that clang vectorizes
 * them (no libm calls, selects instead of branches).
 *
 * Same bits in every clone: contraction is off, so `a*b + c` is never fused
 * into an FMA in the AVX-512 clone and not in the others (AVX2 alone does not
 * imply FMA); lane-wise maps do not depend on the vector width; reductions use
 * explicit lane arrays of fixed length summed in a fixed order.
 */
#include "ckernels_elementwise.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#pragma clang fp contract(off)

#if defined(__x86_64__) && defined(__clang__) && !defined(CK_NO_CLONES)
#define CK_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CK_CLONES
#endif

/* ---- scalar building blocks (inlined into each clone) ---- */

/* Eigen's rational tanh, degree 13/6 on [−7.9, 7.9], absolute error < 1e-6;
 * operation for operation Kernels.fastTanh, so Swift and C agree bit for bit. */
static inline float tanh_rational(float a) {
    const float lim = 7.90531110763549805f;
    float x = a < -lim ? -lim : a;
    x = x > lim ? lim : x;
    float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * x;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    float r = p / q;
    return fabsf(a) < 0.0004f ? a : r;
}

/* √x as one instruction: sqrtf may set errno for x < 0, which keeps clang
 * from vectorizing a loop that calls it. */
static inline float sqrt_nonnegative(float x) {
#if __has_builtin(__builtin_elementwise_sqrt)
    return __builtin_elementwise_sqrt(x);
#else
    return __builtin_sqrtf(x);
#endif
}

static inline float bits_to_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t float_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* e^x for x ≤ 0 (Cephes expf: Cody–Waite reduction by ln 2, degree-6
 * polynomial, relative error ~2e-7); x < −87.3 gives 0. The same arithmetic
 * as Kernels.exp8. */
static inline float exp_nonpositive(float x) {
    int tiny = x < -87.3f;
    float xc = x < -87.3f ? -87.3f : x;
    /* Round to nearest even by adding 1.5·2²³ (|xc·log₂e| < 2²²): rintf's result
     * without a libm call in the baseline clone (SSE2 has no roundps), and the
     * integer in the low mantissa bits without a float → int conversion (which
     * would be undefined for a NaN input; a NaN still comes out as NaN through p). */
    float shifted = xc * 1.44269504088896341f + 12582912.0f;
    float n = shifted - 12582912.0f;
    int32_t ni = (int32_t)(float_to_bits(shifted) - 0x4B400000u);
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440054690583e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    float scale = bits_to_float((uint32_t)(ni + 127) << 23);
    float e = p * scale;
    return tiny ? 0.0f : e;
}

/* log(1 + e) for e ∈ [0, 1], with u = 1 + e rounded: log u by Cephes logf
 * (u = 2^k·m, m ∈ [√½, √2], degree-8 polynomial in f = m − 1, relative error
 * ~1e-7), plus c/u for the part of e the rounding of 1 + e lost
 * (c = e − (u − 1), exact), so tiny e keep log1p(e) ≈ e. */
static inline float log1p_unit(float e, float u) {
    float c = e - (u - 1.0f);
    int big = u > 1.41421356237309505f;
    float m = big ? u * 0.5f : u;
    float k = big ? 1.0f : 0.0f;
    float f = m - 1.0f;
    float z = f * f;
    float y = 7.0376836292e-2f;
    y = y * f - 1.1514610310e-1f;
    y = y * f + 1.1676998740e-1f;
    y = y * f - 1.2420140846e-1f;
    y = y * f + 1.4249322787e-1f;
    y = y * f - 1.6668057665e-1f;
    y = y * f + 2.0000714765e-1f;
    y = y * f - 2.4999993993e-1f;
    y = y * f + 3.3333331174e-1f;
    y = y * f * z;
    y = y + -2.12194440e-4f * k;
    y = y + -0.5f * z;
    float r = f + y;
    r = r + 0.693359375f * k;
    return r + c / u;
}

float ck_tanh(float x) { return tanh_rational(x); }

/* ---- forward: bias + activation after the GEMM ---- */

CK_CLONES
void ck_bias_act_forward(float *out, const float *bias, size_t r0, size_t r1, size_t cols, int act) {
    for (size_t r = r0; r < r1; r++) {
        float *restrict o = out + r * cols;
        if (bias) {
            const float *restrict b = bias;
            switch (act) {
            case CK_ACT_TANH: for (size_t j = 0; j < cols; j++) o[j] = tanh_rational(o[j] + b[j]); break;
            case CK_ACT_RELU: for (size_t j = 0; j < cols; j++) { float s = o[j] + b[j]; o[j] = s > 0.0f ? s : 0.0f; } break;
            default:          for (size_t j = 0; j < cols; j++) o[j] = o[j] + b[j]; break;
            }
        } else {
            switch (act) {
            case CK_ACT_TANH: for (size_t j = 0; j < cols; j++) o[j] = tanh_rational(o[j]); break;
            case CK_ACT_RELU: for (size_t j = 0; j < cols; j++) o[j] = o[j] > 0.0f ? o[j] : 0.0f; break;
            default: break;
            }
        }
    }
}

/* ---- backward ---- */

CK_CLONES
void ck_act_backward_bias(float *d, const float *y, size_t rows, size_t cols, size_t c0, size_t c1, int act,
                          float *db) {
    for (size_t r = 0; r < rows; r++) {
        float *restrict dr = d + r * cols;
        const float *restrict yr = y ? y + r * cols : 0;
        switch (act) {
        case CK_ACT_TANH: for (size_t j = c0; j < c1; j++) dr[j] = dr[j] * (1.0f - yr[j] * yr[j]); break;
        case CK_ACT_RELU: for (size_t j = c0; j < c1; j++) dr[j] = yr[j] > 0.0f ? dr[j] : 0.0f; break;
        default: break;
        }
        /* The row's contribution to the bias gradient while it is in L1: the
         * columns of db accumulate in row order, as a separate pass would. */
        if (db) {
            float *restrict acc = db;
            for (size_t j = c0; j < c1; j++) acc[j] = acc[j] + dr[j];
        }
    }
}

/* ---- the reconstruction term ---- */

#define CK_LANES 16

CK_CLONES
void ck_bernoulli_nll(const float *logits, const float *targets, size_t r0, size_t r1, size_t cols,
                      size_t targetRepeat, double *rowLoss, float *dlogits, float scale) {
    for (size_t r = r0; r < r1; r++) {
        const float *restrict l = logits + r * cols;
        const float *restrict x = targets + (r / targetRepeat) * cols;
        float *restrict dl = dlogits ? dlogits + r * cols : 0;
        /* Sixteen partial sums, lane j taking columns ≡ j (mod 16), added in
         * order at the end: the same bits at every vector width. */
        float lane[CK_LANES] = {0};
        size_t full = cols - cols % CK_LANES;
        for (size_t p0 = 0; p0 < full; p0 += CK_LANES) {
            for (size_t j = 0; j < CK_LANES; j++) {
                float v = l[p0 + j], t = x[p0 + j];
                float e = exp_nonpositive(-fabsf(v));
                float u = 1.0f + e;
                lane[j] = lane[j] + ((v > 0.0f ? v : 0.0f) - v * t + log1p_unit(e, u));
                if (dl) dl[p0 + j] = scale * ((v >= 0.0f ? 1.0f : e) / u - t);
            }
        }
        float tail = 0.0f;
        for (size_t p = full; p < cols; p++) {
            float v = l[p], t = x[p];
            float e = exp_nonpositive(-fabsf(v));
            float u = 1.0f + e;
            tail = tail + ((v > 0.0f ? v : 0.0f) - v * t + log1p_unit(e, u));
            if (dl) dl[p] = scale * ((v >= 0.0f ? 1.0f : e) / u - t);
        }
        double s = 0.0;
        for (size_t j = 0; j < CK_LANES; j++) s += (double)lane[j];
        rowLoss[r] = s + (double)tail;
    }
}

/* ---- the optimizer ---- */

CK_CLONES
void ck_adam(float *p, const float *g, float *m, float *v, size_t i0, size_t i1,
             float beta1, float beta2, float eps, float stepSize, float invSqrtBc2) {
    float *restrict pp = p;
    const float *restrict gg = g;
    float *restrict mm = m, *restrict vv = v;
    const float omb1 = 1.0f - beta1, omb2 = 1.0f - beta2;
    for (size_t i = i0; i < i1; i++) {
        float gi = gg[i];
        float mi = beta1 * mm[i] + omb1 * gi;
        float vi = beta2 * vv[i] + omb2 * gi * gi;
        mm[i] = mi;
        vv[i] = vi;
        pp[i] = pp[i] - stepSize * mi / (sqrt_nonnegative(vi) * invSqrtBc2 + eps);
    }
}

CK_CLONES
double ck_sum_squares(const float *x, size_t n) {
    double lane[8] = {0};
    size_t full = n - n % 8;
    for (size_t i = 0; i < full; i += 8)
        for (size_t j = 0; j < 8; j++) { double t = (double)x[i + j]; lane[j] = lane[j] + t * t; }
    double s = 0.0;
    for (size_t j = 0; j < 8; j++) s += lane[j];
    for (size_t i = full; i < n; i++) { double t = (double)x[i]; s += t * t; }
    return s;
}
