// Rotary position embedding, in place, both pair conventions, and its backward (CUDA twin of native/cpu/rope.cpp).
#include "common.cuh"
#include "skipgpt.h"

#include <cmath>

namespace {

// x[n, n_heads * head_dim]; one thread per (row i, pair j) computes the angle
// direction * pos[i] * theta^(-2j/hd) once and rotates pair j of every head; direction is +1 for the forward
// and -1 for the backward (a rotation's transpose is its inverse). The angle and its sine/cosine are in
// double, as on the CPU: at positions ~1e4 a float angle is off by ~1e-3 rad (fast math or not), far above
// the fp32 tolerance.
__global__ void rope_kernel(float *x, const int32_t *pos, int n, int n_heads, int head_dim, double log2_theta,
                            int rotate_half, double direction) {
    const int half = head_dim / 2;
    const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (int64_t)n * half) return;
    const int i = (int)(e / half), j = (int)(e % half);
    const double angle = direction * pos[i] * exp2(log2_theta * (-2.0 * j / head_dim));
    double sd, cd;
    sincos(angle, &sd, &cd);
    const float s = (float)sd, c = (float)cd;
    const int a = rotate_half ? j : 2 * j, b = rotate_half ? j + half : 2 * j + 1;
    float *xi = x + (int64_t)i * n_heads * head_dim;
    for (int h = 0; h < n_heads; h++) {
        float *xh = xi + h * head_dim;
        const float x0 = xh[a], x1 = xh[b];
        xh[a] = x0 * c - x1 * s;
        xh[b] = x0 * s + x1 * c;
    }
}

void rotate(float *x, const int32_t *pos, int n, int n_heads, int head_dim, float theta, int rotate_half,
            double direction, cudaStream_t stream) {
    const int64_t total = (int64_t)n * (head_dim / 2);
    if (total <= 0 || n_heads <= 0) return;
    rope_kernel<<<sg::element_blocks(total), sg::kElementThreads, 0, stream>>>(
        x, pos, n, n_heads, head_dim, std::log2((double)theta), rotate_half, direction);
}

}  // namespace

void sg_cuda_rope(float *x, const int32_t *pos, int n, int n_heads, int head_dim, float theta, int rotate_half,
                  void *stream) {
    rotate(x, pos, n, n_heads, head_dim, theta, rotate_half, 1.0, (cudaStream_t)stream);
}

void sg_cuda_rope_backward(float *dx, const int32_t *pos, int n, int n_heads, int head_dim, float theta,
                           int rotate_half, void *stream) {
    rotate(dx, pos, n, n_heads, head_dim, theta, rotate_half, -1.0, (cudaStream_t)stream);
}
