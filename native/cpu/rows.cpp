// Row movement: embedding lookup, gather of routed rows, scatter-add back into the residual, scatter of new
// keys and values into the caches of a batch.
#include "skipgpt.h"
#include <cstring>

// out[n, d] = table[ids[i], :]
void sg_cpu_embedding(float *out, const float *table, const int32_t *ids, int n, int d) {
    for (int i = 0; i < n; i++)
        std::memcpy(out + (int64_t)i * d, table + (int64_t)ids[i] * d, sizeof(float) * d);
}

// out[count, d] = src[idx[i], :]
void sg_cpu_gather_rows(float *out, const float *src, const int32_t *idx, int count, int d) {
#pragma omp parallel for schedule(static) if ((int64_t)count * d > (1 << 16))
    for (int i = 0; i < count; i++)
        std::memcpy(out + (int64_t)i * d, src + (int64_t)idx[i] * d, sizeof(float) * d);
}

// dst[idx[i], :] += src[i, :]; indices distinct, so rows never race
void sg_cpu_scatter_add_rows(float *dst, const float *src, const int32_t *idx, int count, int d) {
#pragma omp parallel for schedule(static) if ((int64_t)count * d > (1 << 16))
    for (int i = 0; i < count; i++) {
        float *di = dst + (int64_t)idx[i] * d;
        const float *si = src + (int64_t)i * d;
#pragma omp simd
        for (int j = 0; j < d; j++) di[j] += si[j];
    }
}

// dst[idx[i], :] = src[i, :]; indices distinct, so rows never race
void sg_cpu_scatter_rows(float *dst, const float *src, const int32_t *idx, int count, int d) {
#pragma omp parallel for schedule(static) if ((int64_t)count * d > (1 << 16))
    for (int i = 0; i < count; i++)
        std::memcpy(dst + (int64_t)idx[i] * d, src + (int64_t)i * d, sizeof(float) * d);
}
