// Training's per-step kernels: the routers' gates with Gumbel noise, their backward, AdamW and a gradient's squared
// norm. Compiled with -ffp-contract=off (see cmake/SkipgptCpu.cmake): the arithmetic is skipgpt_training.h's.
#include "skipgpt.h"
#include "skipgpt_training.h"

// gates, soft[2, n] from z[n, 4] + bias[4]; hard_gates, hard_soft[2, n] or NULL
void sg_cpu_router_gates(float *gates, float *soft, const float *z, const float *bias, int n, double tau, int noise,
                         uint64_t key, uint64_t offset, const float *hard_gates, const float *hard_soft) {
#pragma omp parallel for schedule(static) if (n > 4096)
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 2; j++) {
            const int64_t at = (int64_t)j * n + i;
            gates[at] = sg::router_gate(soft + at, z + (int64_t)4 * i, bias, i, j, tau, noise, key, offset,
                                        hard_gates ? hard_gates + at : nullptr, hard_soft ? hard_soft + at : nullptr);
        }
}

// dz[n, 4] from dgates, soft[2, n]; dbias[4] += column sums of dz, row by row
void sg_cpu_router_gates_backward(float *dz, float *dbias, const float *dgates, const float *soft, int n,
                                  float gate_grad, double tau) {
    float sum[4] = {dbias[0], dbias[1], dbias[2], dbias[3]};
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 2; j++) {
            const float d = sg::router_gate_grad(dgates[(int64_t)j * n + i], gate_grad, soft[(int64_t)j * n + i], tau);
            dz[(int64_t)4 * i + 2 * j] = d;
            dz[(int64_t)4 * i + 2 * j + 1] = -d;
            sum[2 * j] += d;
            sum[2 * j + 1] += -d;
        }
    for (int k = 0; k < 4; k++) dbias[k] = sum[k];
}

// param, grad, m, v[len], updated in place
void sg_cpu_adamw(float *param, const float *grad, float *m, float *v, int64_t len, double grad_scale, double beta1,
                  double beta2, double eps, double step_size, double sqrt_correction2, double keep) {
    const sg::AdamStep s{grad_scale, beta1, beta2, eps, step_size, sqrt_correction2, keep};
#pragma omp parallel for schedule(static) if (len > (1 << 16))
    for (int64_t i = 0; i < len; i++) sg::adamw_element(param + i, m + i, v + i, grad[i], s);
}

// *acc += sum x[len]^2; sequential, so the sum is the one a plain loop makes
void sg_cpu_sum_squares(double *acc, const float *x, int64_t len) {
    double sum = *acc;
    for (int64_t i = 0; i < len; i++) sum += (double)x[i] * x[i];
    *acc = sum;
}

// mask[len]: 0 or 1 / (1 - rate), element by element from its own counter
void sg_cpu_dropout_mask(float *mask, int64_t len, double rate, uint64_t key, uint64_t offset) {
    const float keep = (float)(1.0 / (1.0 - rate));
#pragma omp parallel for schedule(static) if (len > 65536)
    for (int64_t i = 0; i < len; i++) mask[i] = sg::dropout_mask_element((uint64_t)i, rate, keep, key, offset);
}
