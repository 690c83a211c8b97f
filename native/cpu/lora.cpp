// LoRA: the low-rank term scale * B (A x) of an adapted projection, forward and backward.
#include "skipgpt.h"
#include <algorithm>
#include <vector>

namespace {
constexpr int kRows = 8;          // rows per forward block: A and B rows are reused across them from L1
constexpr int kColumnChunk = 256;  // columns of da (or rows of db) one task owns in the backward's sums
}  // namespace

// out[n, m] += scale * (x[n, k] A[r, k]^T) B[m, r]^T. Per block of kRows rows: u[rows, r] = scale * x A^T on the
// stack, then out_i[j] += B_j . u_i. Blocks are independent; u never leaves the block.
void sg_cpu_lora_forward(float *out, const float *x, const float *a, const float *b, int n, int k, int m, int r,
                         float scale) {
    const int blocks = (n + kRows - 1) / kRows;
#pragma omp parallel for schedule(static) if ((int64_t)n * (k + m) * r > (1 << 18))
    for (int blk = 0; blk < blocks; blk++) {
        const int i0 = blk * kRows, rows = std::min(kRows, n - i0);
        float u[kRows * SG_LORA_MAX_RANK];  // [rows, r]
        for (int t = 0; t < r; t++) {
            const float *at = a + (int64_t)t * k;
            for (int i = 0; i < rows; i++) {
                const float *xi = x + (int64_t)(i0 + i) * k;
                float s = 0.0f;
#pragma omp simd reduction(+ : s)
                for (int p = 0; p < k; p++) s += at[p] * xi[p];
                u[i * r + t] = scale * s;
            }
        }
        for (int j = 0; j < m; j++) {
            const float *bj = b + (int64_t)j * r;
            for (int i = 0; i < rows; i++) {
                const float *ui = u + i * r;
                float s = 0.0f;
#pragma omp simd reduction(+ : s)
                for (int t = 0; t < r; t++) s += bj[t] * ui[t];
                out[(int64_t)(i0 + i) * m + j] += s;
            }
        }
    }
}

// dy[n, m], x, dx[n, k], a, da[r, k], b, db[m, r]; u = x A^T, g = scale * dy B, both [n, r].
// Pass 1, rows in parallel: u_i, g_i, and dx_i += g_i A. Passes 2 and 3 are sums over rows, so each runs over
// chunks of its output that one thread owns (rows of db, columns of da): no shared accumulator, and the
// summation order does not depend on the threads.
void sg_cpu_lora_backward(float *dx, float *da, float *db, const float *dy, const float *x, const float *a,
                          const float *b, int n, int k, int m, int r, float scale) {
    std::vector<float> u((size_t)n * r), g((size_t)n * r);
#pragma omp parallel for schedule(static) if ((int64_t)n * (k + m) * r > (1 << 18))
    for (int i = 0; i < n; i++) {
        const float *xi = x + (int64_t)i * k, *dyi = dy + (int64_t)i * m;
        float *ui = u.data() + (size_t)i * r, *gi = g.data() + (size_t)i * r, *dxi = dx + (int64_t)i * k;
        for (int t = 0; t < r; t++) {
            const float *at = a + (int64_t)t * k;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int p = 0; p < k; p++) s += at[p] * xi[p];
            ui[t] = s;
            gi[t] = 0.0f;
        }
        for (int j = 0; j < m; j++) {
            const float *bj = b + (int64_t)j * r;
            const float dyj = dyi[j];
#pragma omp simd
            for (int t = 0; t < r; t++) gi[t] += dyj * bj[t];
        }
        for (int t = 0; t < r; t++) {
            gi[t] *= scale;
            const float *at = a + (int64_t)t * k;
            const float gt = gi[t];
#pragma omp simd
            for (int p = 0; p < k; p++) dxi[p] += gt * at[p];
        }
    }
    // db[j, t] += scale * sum_i dy[i, j] u[i, t]
    const int row_chunks = (m + kColumnChunk - 1) / kColumnChunk;
#pragma omp parallel for schedule(static) if ((int64_t)n * m * r > (1 << 18))
    for (int c = 0; c < row_chunks; c++) {
        const int j0 = c * kColumnChunk, j1 = std::min(m, j0 + kColumnChunk);
        for (int i = 0; i < n; i++) {
            const float *dyi = dy + (int64_t)i * m, *ui = u.data() + (size_t)i * r;
            for (int j = j0; j < j1; j++) {
                float *dbj = db + (int64_t)j * r;
                const float s = scale * dyi[j];
#pragma omp simd
                for (int t = 0; t < r; t++) dbj[t] += s * ui[t];
            }
        }
    }
    // da[t, p] += sum_i g[i, t] x[i, p]
    const int col_chunks = (k + kColumnChunk - 1) / kColumnChunk;
#pragma omp parallel for schedule(static) if ((int64_t)n * k * r > (1 << 18))
    for (int c = 0; c < col_chunks; c++) {
        const int p0 = c * kColumnChunk, p1 = std::min(k, p0 + kColumnChunk);
        for (int i = 0; i < n; i++) {
            const float *xi = x + (int64_t)i * k, *gi = g.data() + (size_t)i * r;
            for (int t = 0; t < r; t++) {
                float *dat = da + (int64_t)t * k;
                const float gt = gi[t];
#pragma omp simd
                for (int p = p0; p < p1; p++) dat[p] += gt * xi[p];
            }
        }
    }
}
