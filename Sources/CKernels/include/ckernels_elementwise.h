/*
 * Elementwise kernels of the VAE path, compiled for the machine's vector width
 * by function multi-versioning (target_clones: AVX-512F, AVX2, baseline x86-64,
 * picked once at load time), so the package stays portable and needs no
 * unsafeFlags. Every clone gives the same bits: floating-point contraction is
 * off (no FMA in one clone and not another) and every reduction uses a fixed
 * lane count and order, independent of the vector width and of the caller's
 * threads.
 *
 * All pointers are to row-major float32 buffers; nothing here allocates,
 * threads or keeps state: the Swift side (Kernels.swift) splits the work
 * across the rank's cores.
 */
#ifndef CKERNELS_ELEMENTWISE_H
#define CKERNELS_ELEMENTWISE_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Activation codes (VAEASConfig.Activation): none (identity), tanh, relu. */
enum { CK_ACT_NONE = 0, CK_ACT_TANH = 1, CK_ACT_RELU = 2 };

/* Eigen's rational tanh (the same arithmetic, in the same order, as
 * Kernels.fastTanh in Swift, so both give the same bits). */
float ck_tanh(float x);

/* Rows [r0, r1) of out[rows × cols]: out ← act(out + bias) (bias may be NULL),
 * the sweep after the GEMM `out = x Wᵀ` of a Linear layer. */
void ck_bias_act_forward(float *out, const float *bias, size_t r0, size_t r1, size_t cols, int act);

/* Columns [c0, c1) of d[rows × cols] (and y): d ← d · act'(pre), act' written
 * through the output y = act(pre) (tanh: 1 − y²; relu: y > 0; none: 1), and,
 * when db is not NULL, db[j] += Σ_r d[r, j] in row order: the activation's
 * backward fused with the bias gradient ∂L/∂b = Σ_rows ∂L/∂pre. Split by
 * columns, so each db[j] sums its rows in the same order at any thread count. */
void ck_act_backward_bias(float *d, const float *y, size_t rows, size_t cols, size_t c0, size_t c1, int act,
                          float *db);

/* Bernoulli NLL with logits and its gradient, rows [r0, r1) of logits[rows × cols]:
 *   rowLoss[r] = Σ_p max(ℓ,0) − ℓ x + log(1 + e^{−|ℓ|})   (stable BCE-with-logits)
 *   dlogits[r, p] = scale · (σ(ℓ) − x)                     (when dlogits is not NULL)
 * Row r reads target row r / targetRepeat. exp and log1p are vectorisable
 * polynomials (Cephes expf/logf), relative error ~1e-7. */
void ck_bernoulli_nll(const float *logits, const float *targets, size_t r0, size_t r1, size_t cols,
                      size_t targetRepeat, double *rowLoss, float *dlogits, float scale);

/* Elements [i0, i1) of one dense Adam step in PyTorch's arithmetic:
 *   m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  p ← p − stepSize · m / (√v · invSqrtBc2 + ε)
 * with stepSize = lr/(1−β₁ᵗ), invSqrtBc2 = 1/√(1−β₂ᵗ): one pass over p, g, m, v. */
void ck_adam(float *p, const float *g, float *m, float *v, size_t i0, size_t i1,
             float beta1, float beta2, float eps, float stepSize, float invSqrtBc2);

/* Σ x² of x[0..n) in double (the caller splits long buffers into fixed blocks): +inf or NaN
 * iff an element is not finite (squares of finite floats cannot overflow a
 * double). Eight double lanes, summed in a fixed order. */
double ck_sum_squares(const float *x, size_t n);

#ifdef __cplusplus
}
#endif
#endif
