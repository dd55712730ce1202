/*
 * The calling thread's floating-point mode: flush subnormal (denormal) results
 * to zero and read subnormal operands as zero.
 *
 * Why: on Intel cores every SSE/AVX operation that produces or reads a
 * subnormal float takes a microcode assist of ~100+ cycles. The auxiliary
 * classifier's softmax over V labels grows sharp as it learns, so exp(logit −
 * max) underflows into the subnormal range for most wrong labels, and the
 * output layer's products then run on them: on an Intel Xeon (family 6
 * model 207, scipy-openblas SkylakeX kernel) a VAE-AS V = 10000 run slowed from
 * about 4 to 24.6 s per epoch by epoch 185, with the same losses once flushed
 * (docs/PERFORMANCE.md, "Subnormals"). Values below 2^-126 ≈ 1.2e-38 carry
 * nothing this model can use. TensorFlow and XLA run their CPU kernels the
 * same way; PyTorch offers it as torch.set_flush_denormal(True).
 *
 * The mode is per thread and a new thread starts with its creator's, so the
 * process sets it before the BLAS creates its threads (BLAS.swift) and each
 * worker of Parallel.chunks sets it again.
 */
#ifndef CKERNELS_FPMODE_H
#define CKERNELS_FPMODE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Turns flush-to-zero and denormals-are-zero on (on != 0) or off for the
 * calling thread (x86-64: MXCSR FTZ and DAZ; AArch64: FPCR.FZ). Returns 0, or
 * -1 where the architecture has no such mode (nothing changes). */
int ck_set_flush_denormals(int on);

/* 1 when the calling thread flushes subnormal results to zero, else 0. */
int ck_flush_denormals_enabled(void);

#ifdef __cplusplus
}
#endif
#endif
