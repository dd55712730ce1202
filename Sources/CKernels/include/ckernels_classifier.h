// The full softmax classifier's passes over the logits (B·L rows × V/P
// columns) and the dense Adam of its shard. Every kernel is compiled three
// times (AVX-512F, AVX2, baseline x86-64) and picked at load time; the three
// give the same bits: lanes are 16 wide in all of them, sums are reduced in a
// fixed order and floating-point contraction (FMA) is off.
#ifndef CKERNELS_CLASSIFIER_H
#define CKERNELS_CLASSIFIER_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// exp(x) by the formula of ckc_softmax_* (Cephes' expf: Cody–Waite range
/// reduction, degree-6 polynomial; relative error ~2e-7; 0 below -87.3, NaN
/// stays NaN). For tests and scalar callers.
float ckc_exp(float x);

/// Online softmax statistics over one tile of logits, rows [0, rows) ×
/// columns [0, cols) at `logits` (row stride `ld`), folded into each row's
/// running max m, S = Σ e^{ℓ−m} and A = Σ e^{ℓ−m}(ℓ−m) (design doc, "The
/// partitioned output layer"): when the tile raises the max from m to m′, the
/// sums so far are rescaled, S ← S·e^{m−m′}, A ← e^{m−m′}(A + (m−m′)S).
/// Start a row with m = -FLT_MAX, S = A = 0. The tile is read twice (max,
/// then exp and sums) while it is in cache; nothing is written to it.
void ckc_softmax_tile_stats(const float *logits, long ld, long rows, long cols,
                            float *rowMax, double *sumExp, double *sumExpShifted);

/// The classifier's two gradients wrt the logits of one tile, in one pass,
/// from p_j = e^{ℓ_j − m}·invSum (m the global row max, invSum = 1/S):
///   CE:  gce_j = ceScale·p_j − ceScale·[j = e]                       (eq. 12)
///   Î, miKind 1 (entropy): gmi_j = −miScale·p_j·(ℓ_j − miRow)        (eq. 13; miRow = Σ_j p_j ℓ_j)
///   Î, miKind 2 (ce, fano): gmi_j = miRow·p_j − miRow·[j = e]        (miRow = dĤ/dCE·miScale)
///   miKind 0: gmi is not written.
/// e = targets[r] − colBase when that lies in [0, cols). gbias[j] receives
/// Σ_r gce_rj (rows in order), written, or added when accumulateBias ≠ 0.
/// Returns Σ |gce| (in Double; NaN or inf if a gradient is not finite).
double ckc_softmax_tile_grad(const float *logits, long ldl, long rows, long cols,
                             const float *rowMax, const float *invSum, const int32_t *targets, long colBase,
                             float ceScale, float *gce, long ldg,
                             int miKind, const float *miRow, float miScale, float *gmi, long ldm,
                             float *gbias, int accumulateBias);

/// Σ |x_i| in Double (NaN or inf if an element is not finite).
double ckc_abs_sum(const float *x, long n);

#ifdef __cplusplus
}
#endif
#endif
