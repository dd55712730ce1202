/* Hashes the outputs of every CKernels elementwise kernel on fixed inputs: built by
 * scripts/check_kernel_isa.sh once per instruction-set level, the hashes must agree. */
#include "ckernels_elementwise.h"
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
static uint64_t s = 88172645463325252ull;
static float u(float lo, float hi) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return lo + (hi - lo) * (float)(s >> 40) / 16777216.0f; }
static uint64_t h = 1469598103934665603ull;
static void mix(const void *p, size_t n) { const unsigned char *c = p; for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 1099511628211ull; }
int main(void) {
    enum { R = 130, C = 787 };
    static float a[R * C], b[C], y[R * C], t[R * C], g[R * C], m[R * C], v[R * C]; static double loss[R];
    for (int i = 0; i < R * C; i++) { a[i] = u(-20, 20); y[i] = u(-1, 1); t[i] = u(0, 1) > 0.5f; g[i] = u(-1, 1); m[i] = 0; v[i] = 0; }
    for (int j = 0; j < C; j++) b[j] = u(-1, 1);
    for (int act = 0; act < 3; act++) { float o[R * C]; memcpy(o, a, sizeof o); ck_bias_act_forward(o, b, 0, R, C, act); mix(o, sizeof o);
        float d[R * C], db[C]; memcpy(d, g, sizeof d); memcpy(db, b, sizeof db); ck_act_backward_bias(d, y, R, C, 0, C, act, db); mix(d, sizeof d); mix(db, sizeof db); }
    float dl[R * C]; ck_bernoulli_nll(a, t, 0, R, C, 1, loss, dl, 0.3f); mix(dl, sizeof dl); mix(loss, sizeof loss);
    float p[R * C]; memcpy(p, a, sizeof p);
    for (int k = 0; k < 3; k++) ck_adam(p, g, m, v, 0, R * C, 0.9f, 0.999f, 1e-8f, 1e-3f * (k + 1), 1.3f);
    mix(p, sizeof p); mix(m, sizeof m); mix(v, sizeof v);
    double ss = ck_sum_squares(g, R * C); mix(&ss, 8);
    printf("%016llx\n", (unsigned long long)h);
}
