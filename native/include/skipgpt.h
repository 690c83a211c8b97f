/*
 * skipgpt.h - the op set of SkipGPT as plain C functions.
 *
 * Every kernel exists twice with the same arguments: sg_cpu_* (native/cpu, host pointers, built everywhere)
 * and sg_cuda_* (native/cuda, device pointers, a trailing cudaStream_t passed as void*, built where nvcc is
 * found). Java binds the CPU set through JavaCPP (io.skipgpt.tensor.NativeCpu); all policy lives in Java.
 *
 * Conventions:
 *   - float32, row-major, contiguous; "n" is a row count, "d" a row length.
 *   - Linear weights are stored [out, in] (as every checkpoint format stores them); matmul is not here:
 *     the CPU backend calls OpenBLAS sgemm, the CUDA backend cuBLAS.
 *   - RoPE pairs are either adjacent (2i, 2i+1) - GGUF / llama2.c, the internal convention - or
 *     rotate-half (i, i + head_dim/2) - Hugging Face.
 *   - Positions and indices are int32.
 */
#ifndef SKIPGPT_H
#define SKIPGPT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- CPU kernels (native/cpu) */

/* out[n, d] = x[n, d] / sqrt(mean(x^2) + eps) * w[d]. out may alias x. */
void sg_cpu_rmsnorm(float *out, const float *x, const float *w, int n, int d, float eps);

/* In place on x[n, n_heads * head_dim]: rotate each head of row i by angle pos[i] * theta^(-2j/head_dim)
 * for pair j. rotate_half = 0: pairs (2j, 2j+1); rotate_half = 1: pairs (j, j + head_dim/2). */
void sg_cpu_rope(float *x, const int32_t *pos, int n, int n_heads, int head_dim, float theta, int rotate_half);

/* Causal attention with grouped-query heads over a KV cache.
 *   q[n, n_heads * head_dim]       queries; query i sits at position pos[i]
 *   k, v[t, n_kv_heads * head_dim] the cache, t > max(pos)
 *   out[n, n_heads * head_dim]     softmax(q k^T / sqrt(head_dim)) v over keys 0..pos[i]
 * Query head h reads kv head h / (n_heads / n_kv_heads). Queries need not be contiguous in position
 * (a routed prefill passes only the kept ones at their original positions). */
void sg_cpu_attention(float *out, const float *q, const float *k, const float *v, const int32_t *pos,
                      int n, int n_heads, int n_kv_heads, int head_dim);

/* out[i] = silu(gate[i]) * up[i] over len elements; out may alias gate. */
void sg_cpu_swiglu(float *out, const float *gate, const float *up, int64_t len);

/* In place row softmax of x[n, d]. */
void sg_cpu_softmax(float *x, int n, int d);

/* out[n, d] = table[ids[i], :]. */
void sg_cpu_embedding(float *out, const float *table, const int32_t *ids, int n, int d);

/* out[count, d] = src[idx[i], :]  (compaction of routed rows). */
void sg_cpu_gather_rows(float *out, const float *src, const int32_t *idx, int count, int d);

/* dst[idx[i], :] += src[i, :] for i < count; indices are distinct. */
void sg_cpu_scatter_add_rows(float *dst, const float *src, const int32_t *idx, int count, int d);

/* dst[i] += src[i] over len elements (the residual add). */
void sg_cpu_add(float *dst, const float *src, int64_t len);

/* loss[i] = logsumexp(logits[i, :]) - logits[i, targets[i]] for logits[n, vocab]. */
void sg_cpu_cross_entropy(float *loss, const float *logits, const int32_t *targets, int n, int vocab);

/* Compaction of a routing decision: idx[0 .. *count) = the i < n with keep[i] != 0, ascending; *count = how
 * many. idx has room for n; entries from *count on are left untouched. */
void sg_cpu_compact(int32_t *idx, int32_t *count, const uint8_t *keep, int n);

/* ---------------------------------------------------------------- GPU probe (native/cpu) */

/* Looks for a usable NVIDIA GPU by dlopen()ing the driver (libcuda.so.1) - nothing links CUDA.
 * Returns the number of devices (>= 1) and writes the first one's name into msg, or returns 0 and writes
 * why none is usable ("no NVIDIA driver (libcuda.so.1 not found)", ...). msg is always NUL-terminated. */
int sg_gpu_probe(char *msg, int msg_len);

/* ---------------------------------------------------------------- CUDA kernels (native/cuda) */

/* Same contracts as the CPU set, on device pointers, enqueued on stream (a cudaStream_t).
 * sg_cuda_attention needs head_dim <= 128 for its tiled kernel and falls back to a slow one-warp-per-row
 * kernel beyond that; when few query rows leave the device idle (decode) it splits the keys over several
 * blocks and takes their partial results' scratch stream-ordered from a private memory pool that keeps its
 * memory (a few hundred KB). sg_cuda_compact writes *count to device memory, so a routed layer needs no host
 * round trip. */
void sg_cuda_rmsnorm(float *out, const float *x, const float *w, int n, int d, float eps, void *stream);
void sg_cuda_rope(float *x, const int32_t *pos, int n, int n_heads, int head_dim, float theta, int rotate_half,
                  void *stream);
void sg_cuda_attention(float *out, const float *q, const float *k, const float *v, const int32_t *pos,
                       int n, int n_heads, int n_kv_heads, int head_dim, void *stream);
void sg_cuda_swiglu(float *out, const float *gate, const float *up, int64_t len, void *stream);
void sg_cuda_softmax(float *x, int n, int d, void *stream);
void sg_cuda_embedding(float *out, const float *table, const int32_t *ids, int n, int d, void *stream);
void sg_cuda_gather_rows(float *out, const float *src, const int32_t *idx, int count, int d, void *stream);
void sg_cuda_scatter_add_rows(float *dst, const float *src, const int32_t *idx, int count, int d, void *stream);
void sg_cuda_add(float *dst, const float *src, int64_t len, void *stream);
void sg_cuda_cross_entropy(float *loss, const float *logits, const int32_t *targets, int n, int vocab,
                           void *stream);
void sg_cuda_compact(int32_t *idx, int32_t *count, const uint8_t *keep, int n, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* SKIPGPT_H */
