/*
 * skipgpt.h - the op set of SkipGPT as plain C functions.
 *
 * Every kernel exists twice with the same arguments: sg_cpu_* (native/cpu, host pointers, built everywhere)
 * and sg_cuda_* (native/cuda, device pointers, a trailing cudaStream_t passed as void*, built where nvcc is
 * found). Java binds them through JavaCPP (io.skipgpt.tensor.NativeCpu and NativeCuda); all policy lives in Java.
 *
 * Conventions:
 *   - float32, row-major, contiguous; "n" is a row count, "d" a row length.
 *   - Linear weights are stored [out, in] (as every checkpoint format stores them); matmul and its backward
 *     are not here: the CPU backend calls OpenBLAS sgemm, the CUDA backend cuBLAS.
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
 *   k, v[t, n_kv_heads * head_dim] the cache, t > max(kv_start[i] + pos[i])
 *   kv_start[n]                    the cache row where query i's sequence begins, or NULL for 0 everywhere
 *   out[n, n_heads * head_dim]     softmax(q k^T / sqrt(head_dim)) v over cache rows
 *                                  kv_start[i] .. kv_start[i] + pos[i]
 * Query head h reads kv head h / (n_heads / n_kv_heads). Queries need not be contiguous in position
 * (a routed prefill passes only the kept ones at their original positions). kv_start lets one call serve the
 * decode steps of many sequences whose caches are slices of one k, v pair. */
void sg_cpu_attention(float *out, const float *q, const float *k, const float *v, const int32_t *pos,
                      const int32_t *kv_start, int n, int n_heads, int n_kv_heads, int head_dim);

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

/* dst[idx[i], :] = src[i, :] for i < count; indices are distinct (new keys and values into their caches). */
void sg_cpu_scatter_rows(float *dst, const float *src, const int32_t *idx, int count, int d);

/* dst[i] += src[i] over len elements (the residual add). */
void sg_cpu_add(float *dst, const float *src, int64_t len);

/* loss[i] = logsumexp(logits[i, :]) - logits[i, targets[i]] for logits[n, vocab]. */
void sg_cpu_cross_entropy(float *loss, const float *logits, const int32_t *targets, int n, int vocab);

/* Masked-dense gating. out[i] = sum_j a[i, j] * b[i, j] for a, b[n, d]: the gate gradient
 * dL/dg_i = <dL/dh_i, f(x)_i>. */
void sg_cpu_row_dot(float *out, const float *a, const float *b, int n, int d);

/* In place on x[n, d]: row i *= s[i] (a module's output times its gate). */
void sg_cpu_scale_rows(float *x, const float *s, int n, int d);

/* Compaction of a routing decision: idx[0 .. *count) = the i < n with keep[i] != 0, ascending; *count = how
 * many. idx has room for n; entries from *count on are left untouched. Not bound in Java yet: the model's gates
 * decide on the host, where it compacts as it reads the decisions (see LlamaModel.compact); these kernels are the
 * device-side path for gates that decide on the device. */
void sg_cpu_compact(int32_t *idx, int32_t *count, const uint8_t *keep, int n);

/* ---------------------------------------------------------------- CPU backward kernels (native/cpu)
 * Gradients of activations are written; gradients of parameters (dw) and of the KV cache (dk, dv), which
 * several rows feed, are added into. "dy" is the gradient of the forward op's output. */

/* Backward of sg_cpu_rmsnorm over x[n, d], w[d], dy[n, d], with r_i = 1 / sqrt(mean(x_i^2) + eps):
 *   dx[i, j] = r_i * w[j] * dy[i, j] - x[i, j] * r_i^3 / d * sum_k dy[i, k] * w[k] * x[i, k]   (written)
 *   dw[j]   += sum_i dy[i, j] * x[i, j] * r_i                                               (dw may be NULL)
 * dx must not alias dy or x. */
void sg_cpu_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w, int n, int d,
                             float eps);

/* Backward of sg_cpu_rope, in place on dx[n, n_heads * head_dim]: the rotation is orthogonal, so the
 * gradient turns back by the same angle (same arguments as the forward). */
void sg_cpu_rope_backward(float *dx, const int32_t *pos, int n, int n_heads, int head_dim, float theta,
                          int rotate_half);

/* Backward of sg_cpu_attention, recomputing the softmax rows from q and k (nothing stored by the forward).
 * With s_it = q_i . k_t / sqrt(head_dim) over keys t <= pos[i], P = softmax(s), dP_it = dout_i . v_t and
 * D_i = sum_t P_it dP_it (per head):
 *   dq[n, n_heads * head_dim]      = sum_t P_it (dP_it - D_i) k_t / sqrt(head_dim)   (written)
 *   dk[t, n_kv_heads * head_dim]  += sum_i P_it (dP_it - D_i) q_i / sqrt(head_dim)   (every query head of the
 *   dv[t, n_kv_heads * head_dim]  += sum_i P_it dout_i                                 group adds in)
 * Rows of dk and dv past max(pos) are untouched. No output may alias another argument. */
void sg_cpu_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                               const float *v, const int32_t *pos, int n, int n_heads, int n_kv_heads,
                               int head_dim);

/* Backward of sg_cpu_swiglu over len elements, with sigma = 1 / (1 + e^-gate):
 *   dgate = dout * up * sigma * (1 + gate * (1 - sigma)),  dup = dout * gate * sigma   (both written)
 * Each output may alias an input exactly (every element is read before it is written); dgate != dup. */
void sg_cpu_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                            int64_t len);

/* Backward of sg_cpu_cross_entropy: dlogits[i, j] = scale * c_i * (softmax(logits[i])[j] - [j == targets[i]])
 * with c_i = dloss[i], or 1 when dloss is NULL (scale = 1/N gives the gradient of the mean loss).
 * dlogits may alias logits (a vocabulary-sized gradient need not take a second buffer). */
void sg_cpu_cross_entropy_backward(float *dlogits, const float *logits, const int32_t *targets, const float *dloss,
                                   float scale, int n, int vocab);

/* ---------------------------------------------------------------- CPU LoRA kernels (native/cpu)
 * A low-rank adapter on a linear layer W[m, k] (stored [out, in]): y = x W^T + scale * (x A^T) B^T with
 * A[r, k], B[m, r] and scale = alpha / r (PEFT's layout and scaling). The base product stays a GEMM; these
 * kernels add the adapter's term. Ranks up to SG_LORA_MAX_RANK. */
#define SG_LORA_MAX_RANK 256

/* out[n, m] += scale * (x[n, k] A[r, k]^T) B[m, r]^T, fused: per block of rows, the [rows, r] intermediate
 * x A^T stays in a buffer on the stack (registers and L1), never in memory the caller sees. out must not
 * alias x, a or b. */
void sg_cpu_lora_forward(float *out, const float *x, const float *a, const float *b, int n, int k, int m, int r,
                         float scale);

/* Backward of sg_cpu_lora_forward given dy[n, m], with u = x A^T and g = scale * dy B (both [n, r]):
 *   dx[n, k] += g A              (the adapter's share of the input gradient, added to the base projection's)
 *   da[r, k] += g^T x
 *   db[m, r] += scale * dy^T u
 * u is recomputed from x; u and g live in a scratch buffer of the kernel's own. No output may alias another
 * argument. */
void sg_cpu_lora_backward(float *dx, float *da, float *db, const float *dy, const float *x, const float *a,
                          const float *b, int n, int k, int m, int r, float scale);

/* ---------------------------------------------------------------- CPU training kernels (native/cpu)
 * The per-step work of training outside the passes: the routers' gates with their Gumbel noise, and AdamW. Both
 * compute as the plain-Java code they replace did (double precision, no fused multiply-adds), and their CUDA twins
 * compute the same bits (skipgpt_training.h holds the shared arithmetic). */

/* Router gates of masked-dense training for n rows. z[n, 4] holds each row's router logits (attention execute,
 * attention skip, MLP execute, MLP skip), bias[4] is added to them in float. For row i and module j (0 attention,
 * 1 MLP), with ze = z[i, 2j] + bias[2j] and zs = z[i, 2j + 1] + bias[2j + 1]:
 *   a = (ze + Ge) - (zs + Gs) in double with Gumbel noise G = -log(-log(u)) when noise != 0, else a = ze - zs;
 *   soft[j, i] = 1 / (1 + exp(-a / tau)), and gates[j, i] = 1 if a > 0 else 0.
 * Given hard_gates[2, n] (another pass's gates) the gates are instead hard_gates[j, i] + (soft[j, i] -
 * hard_soft[j, i]) when hard_soft is not NULL (the straight-through surrogate), else hard_gates[j, i].
 * The uniforms come from Philox4x32-10 with key (key & 0xffffffff, key >> 32) and counter (i, j, offset &
 * 0xffffffff, offset >> 32): words 0 and 1 make ue, words 2 and 3 us, each ((w_hi << 32 | w_lo) >> 12) + 0.5
 * times 2^-52. So a call draws noise of its own for every offset, and sg_cuda_router_gates draws the same bits. */
void sg_cpu_router_gates(float *gates, float *soft, const float *z, const float *bias, int n, double tau, int noise,
                         uint64_t key, uint64_t offset, const float *hard_gates, const float *hard_soft);

/* Backward of sg_cpu_router_gates through the soft gates (straight-through): for row i and module j, with
 * c = dgates[j, i] + gate_grad (float) and s = soft[j, i], d = c * s * (1 - s) / tau in double, rounded to float:
 *   dz[i, 2j] = d, dz[i, 2j + 1] = -d   (written)
 *   dbias[k] += sum_i dz[i, k]          (summed in float, row by row) */
void sg_cpu_router_gates_backward(float *dz, float *dbias, const float *dgates, const float *soft, int n,
                                  float gate_grad, double tau);

/* A dropout mask of len elements: mask[i] = 0 with probability rate, else (float)(1 / (1 - rate)), so that
 * x * mask keeps the expectation of x. Element i's uniform u comes from Philox4x32-10 with key (key & 0xffffffff,
 * key >> 32) and counter (i & 0xffffffff, i >> 32, offset & 0xffffffff, offset >> 32): words 0 and 1, converted as
 * the router gates' are; the element is dropped iff u < rate. sg_cuda_dropout_mask draws the same bits. */
void sg_cpu_dropout_mask(float *mask, int64_t len, double rate, uint64_t key, uint64_t offset);

/* AdamW (decoupled weight decay) in place over len elements of param, grad, m, v, in double:
 *   g = grad * grad_scale, rounded to float      (grad_scale: 1 / accumulation steps times the clipping factor)
 *   m = beta1 * m + (1 - beta1) * g,   v = beta2 * v + (1 - beta2) * g * g   (stored as float)
 *   param = param * keep - step_size * m / (sqrt(v) / sqrt_correction2 + eps)   (m, v before rounding)
 * with keep = 1 - lr * weight_decay (or 1), step_size = lr / (1 - beta1^t), sqrt_correction2 = sqrt(1 - beta2^t). */
void sg_cpu_adamw(float *param, const float *grad, float *m, float *v, int64_t len, double grad_scale, double beta1,
                  double beta2, double eps, double step_size, double sqrt_correction2, double keep);

/* *acc += sum of x[i]^2 over len elements, in double, in index order (the squared norm of a gradient). */
void sg_cpu_sum_squares(double *acc, const float *x, int64_t len);

/* ---------------------------------------------------------------- GPU probe (native/cpu) */

/* Looks for a usable NVIDIA GPU by dlopen()ing the driver (libcuda.so.1) - nothing links CUDA.
 * Returns the number of devices (>= 1) and writes the first one's name into msg, or returns 0 and writes
 * why none is usable ("no NVIDIA driver (libcuda.so.1 not found)", ...). msg is always NUL-terminated. */
int sg_gpu_probe(char *msg, int msg_len);

/* ---------------------------------------------------------------- CUDA kernels (native/cuda) */

/* Same contracts as the CPU set, on device pointers, enqueued on stream (a cudaStream_t).
 * sg_cuda_attention without kv_start runs a tiled kernel (query rows of one sequence share each K/V tile) for
 * head_dim <= 128; with kv_start every query reads its own keys, so it runs a kernel made for decode steps (a
 * warp per query head, head_dim <= 256). Beyond those head sizes it falls back to a slow one-warp-per-row
 * kernel. When few query rows leave the device idle (decode) it splits the keys over several blocks and takes
 * their partial results' scratch, splits * n * n_heads * (head_dim + 2) floats, stream-ordered from a private
 * memory pool that keeps its memory: a few hundred KB for one sequence, a few MB for a batch (3.5 MB for 16
 * sequences of 32 heads of 128 on an H200), up to ~13 MB just below the batch that needs no split. sg_cuda_compact writes *count to device memory (see sg_cpu_compact). */
void sg_cuda_rmsnorm(float *out, const float *x, const float *w, int n, int d, float eps, void *stream);
void sg_cuda_rope(float *x, const int32_t *pos, int n, int n_heads, int head_dim, float theta, int rotate_half,
                  void *stream);
void sg_cuda_attention(float *out, const float *q, const float *k, const float *v, const int32_t *pos,
                       const int32_t *kv_start, int n, int n_heads, int n_kv_heads, int head_dim, void *stream);
void sg_cuda_swiglu(float *out, const float *gate, const float *up, int64_t len, void *stream);
void sg_cuda_softmax(float *x, int n, int d, void *stream);
void sg_cuda_embedding(float *out, const float *table, const int32_t *ids, int n, int d, void *stream);
void sg_cuda_gather_rows(float *out, const float *src, const int32_t *idx, int count, int d, void *stream);
void sg_cuda_scatter_add_rows(float *dst, const float *src, const int32_t *idx, int count, int d, void *stream);
void sg_cuda_scatter_rows(float *dst, const float *src, const int32_t *idx, int count, int d, void *stream);
void sg_cuda_add(float *dst, const float *src, int64_t len, void *stream);
void sg_cuda_cross_entropy(float *loss, const float *logits, const int32_t *targets, int n, int vocab,
                           void *stream);
void sg_cuda_compact(int32_t *idx, int32_t *count, const uint8_t *keep, int n, void *stream);
void sg_cuda_row_dot(float *out, const float *a, const float *b, int n, int d, void *stream);
void sg_cuda_scale_rows(float *x, const float *s, int n, int d, void *stream);

/* Backward twins. Accumulated outputs (dw, dk, dv) are summed with atomicAdd, so their last bits vary from
 * run to run. sg_cuda_attention_backward runs one block per (query, head) row and needs
 * head_dim <= 2048 (its shared memory holds the row's q, dout and per-warp dq). */
void sg_cuda_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w, int n, int d,
                              float eps, void *stream);
void sg_cuda_rope_backward(float *dx, const int32_t *pos, int n, int n_heads, int head_dim, float theta,
                           int rotate_half, void *stream);
void sg_cuda_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                const float *v, const int32_t *pos, int n, int n_heads, int n_kv_heads,
                                int head_dim, void *stream);
void sg_cuda_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                             int64_t len, void *stream);
void sg_cuda_cross_entropy_backward(float *dlogits, const float *logits, const int32_t *targets,
                                    const float *dloss, float scale, int n, int vocab, void *stream);

/* LoRA twins. The forward runs one block per 16 rows (and, when that leaves the device idle, per slice of the
 * m outputs too), with the block's [16, r] intermediate in shared memory. The backward runs one block per 16
 * rows, u and g in shared memory; da and db are summed over the blocks with atomicAdd. r <= SG_LORA_MAX_RANK. */
void sg_cuda_lora_forward(float *out, const float *x, const float *a, const float *b, int n, int k, int m, int r,
                          float scale, void *stream);
void sg_cuda_lora_backward(float *dx, float *da, float *db, const float *dy, const float *x, const float *a,
                           const float *b, int n, int k, int m, int r, float scale, void *stream);

/* Training twins. sg_cuda_router_gates draws the same uniforms as the CPU (integer Philox, the same conversion);
 * its logarithms and exponentials are the device's, so soft gates may differ from the CPU's in their last bit.
 * sg_cuda_router_gates_backward sums dbias in one block (in a fixed order, not the CPU's). sg_cuda_adamw computes the
 * CPU's bits exactly (correctly rounded double operations, none fused). sg_cuda_sum_squares adds per-block partial
 * sums into *acc (device memory) with atomicAdd, so its last bits vary from run to run. */
void sg_cuda_router_gates(float *gates, float *soft, const float *z, const float *bias, int n, double tau, int noise,
                          uint64_t key, uint64_t offset, const float *hard_gates, const float *hard_soft, void *stream);
void sg_cuda_router_gates_backward(float *dz, float *dbias, const float *dgates, const float *soft, int n,
                                   float gate_grad, double tau, void *stream);
void sg_cuda_adamw(float *param, const float *grad, float *m, float *v, int64_t len, double grad_scale, double beta1,
                   double beta2, double eps, double step_size, double sqrt_correction2, double keep, void *stream);
void sg_cuda_sum_squares(double *acc, const float *x, int64_t len, void *stream);
void sg_cuda_dropout_mask(float *mask, int64_t len, double rate, uint64_t key, uint64_t offset, void *stream);

/* bf16 storage, CUDA only: the CUDA backend keeps linear weights in bfloat16 for cuBLAS's bf16 GEMM (fp32
 * accumulation), and rounds each GEMM's activation operand to bf16 just before the product. bf16 values are
 * their raw bits, the top half of a float32. No CPU twin: the CPU backend computes in fp32 only. */

/* out[len] = x[len] rounded to bf16, to nearest with ties to even (so values past the largest bf16 become inf).
 * A NaN stays a NaN: sign and top payload bits kept, quiet bit set (plain rounding could carry it into inf). */
void sg_cuda_f32_to_bf16(uint16_t *out, const float *x, int64_t len, void *stream);

/* The middle of attention computed as two bf16 GEMMs (the CUDA backend at bf16): s[heads, rows, t] holds the
 * scaled scores q.k / sqrt(head_dim) of query row r against every key t' < t, for each head; query r sees keys
 * 0..pos[r] (pos[r] < t). p[h, r, t'] = bf16(softmax of s[h, r, 0..pos[r]])[t'] for t' <= pos[r], 0 beyond, so
 * that p times V sums the visible values only. */
void sg_cuda_attention_probs_bf16(uint16_t *p, const float *s, const int32_t *pos, int rows, int heads, int t,
                                  void *stream);

#ifdef __cplusplus
}
#endif

#endif /* SKIPGPT_H */
