// Training's per-step kernels (CUDA twins of native/cpu/training.cpp): the routers' gates with Gumbel noise, their
// backward, AdamW and a gradient's squared norm. The per-element arithmetic is skipgpt_training.h's, as on the CPU.
#include "common.cuh"
#include "skipgpt.h"
#include "skipgpt_training.h"

#include <algorithm>

namespace {

constexpr int kThreads = 256;  // the reducing kernels' blocks (sum of squares, gates backward)

// gates, soft[2, n] from z[n, 4] + bias[4]; one thread per gate
__global__ void router_gates_kernel(float *gates, float *soft, const float *z, const float *bias, int n, double tau,
                                    int noise, uint64_t key, uint64_t offset, const float *hard_gates,
                                    const float *hard_soft) {
    const int64_t at = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (at >= 2 * (int64_t)n) return;
    const int j = (int)(at / n), i = (int)(at % n);
    gates[at] = sg::router_gate(soft + at, z + (int64_t)4 * i, bias, i, j, tau, noise, key, offset,
                                hard_gates ? hard_gates + at : nullptr, hard_soft ? hard_soft + at : nullptr);
}

// dz[n, 4] from dgates, soft[2, n]; dbias[4] += column sums of dz. One block, so the sums need no atomics and come
// out the same on every run.
__global__ void router_gates_backward_kernel(float *dz, float *dbias, const float *dgates, const float *soft, int n,
                                             float gate_grad, double tau) {
    float sum[2] = {0.0f, 0.0f};
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        for (int j = 0; j < 2; j++) {
            const float d = sg::router_gate_grad(dgates[(int64_t)j * n + i], gate_grad, soft[(int64_t)j * n + i], tau);
            dz[(int64_t)4 * i + 2 * j] = d;
            dz[(int64_t)4 * i + 2 * j + 1] = -d;
            sum[j] += d;
        }
    for (int j = 0; j < 2; j++) {
        const float total = sg::block_sum(sum[j]);
        if (threadIdx.x == 0) {
            dbias[2 * j] += total;
            dbias[2 * j + 1] -= total;
        }
    }
}

// param, grad, m, v[len] in place; one thread per element
__global__ void adamw_kernel(float *param, const float *grad, float *m, float *v, int64_t len, sg::AdamStep s) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < len) sg::adamw_element(param + i, m + i, v + i, grad[i], s);
}

// *acc += sum x[len]^2: each block sums a grid-strided share in double and adds it in once
__global__ void sum_squares_kernel(double *acc, const float *x, int64_t len) {
    __shared__ double part[kThreads / 32];
    double sum = 0.0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (int64_t)gridDim.x * blockDim.x)
        sum += (double)x[i] * x[i];
    sum = sg::warp_sum(sum);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        double total = 0.0;
        for (int w = 0; w < kThreads / 32; w++) total += part[w];
        atomicAdd(acc, total);
    }
}

// mask[len]; one thread per element
__global__ void dropout_mask_kernel(float *mask, int64_t len, double rate, float keep, uint64_t key, uint64_t offset) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < len) mask[i] = sg::dropout_mask_element((uint64_t)i, rate, keep, key, offset);
}

}  // namespace

void sg_cuda_router_gates(float *gates, float *soft, const float *z, const float *bias, int n, double tau, int noise,
                          uint64_t key, uint64_t offset, const float *hard_gates, const float *hard_soft,
                          void *stream) {
    if (n <= 0) return;
    router_gates_kernel<<<sg::element_blocks(2 * (int64_t)n), sg::kElementThreads, 0, (cudaStream_t)stream>>>(
        gates, soft, z, bias, n, tau, noise, key, offset, hard_gates, hard_soft);
}

void sg_cuda_router_gates_backward(float *dz, float *dbias, const float *dgates, const float *soft, int n,
                                   float gate_grad, double tau, void *stream) {
    if (n <= 0) return;
    router_gates_backward_kernel<<<1, kThreads, 0, (cudaStream_t)stream>>>(dz, dbias, dgates, soft, n, gate_grad, tau);
}

void sg_cuda_adamw(float *param, const float *grad, float *m, float *v, int64_t len, double grad_scale, double beta1,
                   double beta2, double eps, double step_size, double sqrt_correction2, double keep, void *stream) {
    if (len <= 0) return;
    const sg::AdamStep s{grad_scale, beta1, beta2, eps, step_size, sqrt_correction2, keep};
    adamw_kernel<<<sg::element_blocks(len), sg::kElementThreads, 0, (cudaStream_t)stream>>>(param, grad, m, v, len, s);
}

void sg_cuda_sum_squares(double *acc, const float *x, int64_t len, void *stream) {
    if (len <= 0) return;
    // enough blocks to fill an H200 (132 SMs) a few times over; each thread then sums a strided share
    const unsigned blocks = std::min(sg::element_blocks(len), 1024u);
    sum_squares_kernel<<<blocks, kThreads, 0, (cudaStream_t)stream>>>(acc, x, len);
}

void sg_cuda_dropout_mask(float *mask, int64_t len, double rate, uint64_t key, uint64_t offset, void *stream) {
    if (len <= 0) return;
    const float keep = (float)(1.0 / (1.0 - rate));
    dropout_mask_kernel<<<sg::element_blocks(len), sg::kElementThreads, 0, (cudaStream_t)stream>>>(mask, len, rate, keep,
                                                                                                  key, offset);
}
