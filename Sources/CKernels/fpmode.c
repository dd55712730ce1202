/* The calling thread's subnormal handling (see include/ckernels_fpmode.h). */
#include "ckernels_fpmode.h"
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
enum { MXCSR_DAZ = 1u << 6, MXCSR_FTZ = 1u << 15 };

static inline uint32_t read_mxcsr(void) {
    uint32_t m;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    return m;
}

int ck_set_flush_denormals(int on) {
    uint32_t m = read_mxcsr();
    uint32_t want = on ? (m | MXCSR_DAZ | MXCSR_FTZ) : (m & ~(uint32_t)(MXCSR_DAZ | MXCSR_FTZ));
    if (want != m) __asm__ volatile("ldmxcsr %0" : : "m"(want));
    return 0;
}

int ck_flush_denormals_enabled(void) {
    uint32_t m = read_mxcsr();
    return (m & MXCSR_FTZ) && (m & MXCSR_DAZ);
}
#elif defined(__aarch64__)
enum { FPCR_FZ = 1u << 24 };

int ck_set_flush_denormals(int on) {
    uint64_t r;
    __asm__ volatile("mrs %0, fpcr" : "=r"(r));
    uint64_t want = on ? (r | FPCR_FZ) : (r & ~(uint64_t)FPCR_FZ);
    if (want != r) __asm__ volatile("msr fpcr, %0" : : "r"(want));
    return 0;
}

int ck_flush_denormals_enabled(void) {
    uint64_t r;
    __asm__ volatile("mrs %0, fpcr" : "=r"(r));
    return (r & FPCR_FZ) != 0;
}
#else
int ck_set_flush_denormals(int on) { (void)on; return -1; }
int ck_flush_denormals_enabled(void) { return 0; }
#endif
