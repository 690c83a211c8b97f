// Backward of RMSNorm (CUDA twin of native/cpu/norm_backward.cpp).
#include "common.cuh"
#include "skipgpt.h"

namespace {

constexpr int kRowsPerBlock = 16;

// dy, x, dx[n, d], w, dw[d]; r_i = 1 / sqrt(mean(x_i^2) + eps).
// dx[i, j] = r_i w_j dy_ij - x_ij r_i^3 / d * sum_k dy_ik w_k x_ik;  dw[j] += sum_i dy_ij x_ij r_i.
// A block owns kRowsPerBlock rows. First it reduces, row by row, sum x^2 and sum dy w x over the whole block;
// then each thread walks its columns down the block's rows, writing dx and summing the block's share of dw
// for those columns, which it adds with one atomicAdd per column: n / kRowsPerBlock atomics per element of dw
// instead of n.
__global__ void rmsnorm_backward_kernel(float *dx, float *dw, const float *dy, const float *x, const float *w, int n,
                                        int d, float eps) {
    __shared__ float r[kRowsPerBlock], coef[kRowsPerBlock];
    const int i0 = blockIdx.x * kRowsPerBlock, rows = min(kRowsPerBlock, n - i0);
    for (int rr = 0; rr < rows; rr++) {
        const int64_t off = (int64_t)(i0 + rr) * d;
        float ss = 0.0f, dot = 0.0f;
        for (int c = threadIdx.x; c < d; c += blockDim.x) {
            const float xv = x[off + c];
            ss += xv * xv;
            dot += dy[off + c] * w[c] * xv;
        }
        ss = sg::block_sum(ss);
        dot = sg::block_sum(dot);
        if (threadIdx.x == 0) {
            const float ri = rsqrtf(ss / d + eps);
            r[rr] = ri;
            coef[rr] = dot * ri * ri * ri / d;
        }
    }
    __syncthreads();
    for (int c = threadIdx.x; c < d; c += blockDim.x) {
        const float wc = w[c];
        float acc = 0.0f;
        for (int rr = 0; rr < rows; rr++) {
            const int64_t e = (int64_t)(i0 + rr) * d + c;
            const float xv = x[e], g = dy[e];
            dx[e] = r[rr] * wc * g - xv * coef[rr];
            acc += g * xv * r[rr];
        }
        if (dw) atomicAdd(dw + c, acc);
    }
}

}  // namespace

void sg_cuda_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w, int n, int d,
                              float eps, void *stream) {
    if (n <= 0 || d <= 0) return;
    const int blocks = (n + kRowsPerBlock - 1) / kRowsPerBlock;
    rmsnorm_backward_kernel<<<blocks, sg::row_threads(d), 0, (cudaStream_t)stream>>>(dx, dw, dy, x, w, n, d, eps);
}
