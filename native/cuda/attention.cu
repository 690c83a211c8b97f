// Causal grouped-query attention over a KV cache (CUDA twin of native/cpu/attention.cpp).
//
// Tiled kernel, flash-attention style, in fp32 on the CUDA cores (the contract is fp32; TF32 tensor cores
// would cost ~1e-3 relative). A block owns kRows query rows of one kv head, where a row is one (query, head)
// pair: with GQA the `group` query heads that read the same kv head sit in adjacent rows, so every K/V tile
// loaded into shared memory serves all of them. Keys stream through in tiles of kKeys with an online softmax
// (running max m, sum l, unnormalised output acc in registers), so any sequence length fits. Causality is a
// per-row mask t <= pos(row): queries may sit at any positions (routed prefill keeps only some).
//
// Split keys: when the (row tile, kv head) grid has fewer blocks than the device has multiprocessors (decode,
// short prefills) one block's tile loop would be the whole runtime, so gridDim.z blocks share the key tiles
// of a row tile (block z takes tiles z, z + splits, ...) and write unnormalised partials (m, l, acc) to
// scratch, which a second kernel merges. The scratch comes stream-ordered from a private memory pool that
// keeps its memory, so after the first call this costs no allocation.
//
// Per-query caches (kv_start given): the decode steps of a batch, one query per sequence, each reading its own
// slice of a shared k, v. A tile shared by a block's rows would serve one row, so a warp owns one (query, head)
// row instead: keys one at a time (a coalesced row load, a warp-sum dot product, an online softmax update),
// the output in registers, the keys split over gridDim.y blocks and merged like the tiled kernel's splits.
#include "common.cuh"
#include "skipgpt.h"

#include <cmath>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace {

constexpr int kRows = 64;      // query rows per block
constexpr int kKeys = 64;      // keys per tile
constexpr int kThreads = 256;  // 16 x 16: thread (tx, ty) owns rows ty + 16a and keys tx + 16b (a, b < 4)
                               // of the score tile, and output columns tx + 16c (c < D / 16)

// Shared memory layout for padded head size D (floats unless noted):
//   qs[kRows][D + 1]    queries, pre-scaled by log2(e) / sqrt(head_dim), zero past head_dim
//   kp[..]              the K tile [kKeys][D + 1], then reused for the probabilities P [kRows][kKeys + 16]
//   vs[kKeys][D]        the V tile
//   row_pos[kRows]      int: position of each row's query, -1 for rows past the end
// The +1 pad puts the 16 keys a half warp reads at one column in 16 distinct banks; the +16 pad puts the
// two rows a warp writes of P in opposite bank halves.
template <int D>
struct Layout {
    static constexpr int kQStride = D + 1, kPStride = kKeys + 16;
    static constexpr int kQ = kRows * kQStride;
    static constexpr int kKP = kKeys * kQStride > kRows * kPStride ? kKeys * kQStride : kRows * kPStride;
    static constexpr int kV = kKeys * D;
    static constexpr size_t kBytes = sizeof(float) * (kQ + kKP + kV) + sizeof(int) * kRows;
};

template <int D>
__global__ void __launch_bounds__(kThreads, 2)
attention_tiled_kernel(float *__restrict__ out, float *__restrict__ partial, const float *__restrict__ q,
                       const float *__restrict__ k, const float *__restrict__ v, const int32_t *__restrict__ pos,
                       int n, int n_heads, int n_kv_heads, int head_dim, float scale_log2) {
    using L = Layout<D>;
    constexpr int kCols = D / 16;
    extern __shared__ float smem[];
    float *qs = smem, *kp = qs + L::kQ, *vs = kp + L::kKP;
    int *row_pos = reinterpret_cast<int *>(vs + L::kV);

    const int group = n_heads / n_kv_heads, rows_total = n * group, kvh = blockIdx.y;
    // Reverse order: with ascending positions the last rows have the longest prefixes; start them first.
    const int row0 = (gridDim.x - 1 - blockIdx.x) * kRows;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int64_t q_stride = (int64_t)n_heads * head_dim, kv_stride = (int64_t)n_kv_heads * head_dim;

    // Row r of the block is query (row0 + r) / group, head kvh * group + (row0 + r) % group.
    for (int e = tid; e < kRows * D; e += kThreads) {
        const int r = e / D, c = e % D, gr = row0 + r;
        float val = 0.0f;
        if (gr < rows_total && c < head_dim)
            val = q[(gr / group) * q_stride + (kvh * group + gr % group) * head_dim + c] * scale_log2;
        qs[r * L::kQStride + c] = val;
    }
    if (tid < kRows) row_pos[tid] = row0 + tid < rows_total ? pos[(row0 + tid) / group] : -1;
    __syncthreads();
    int len = 0;  // keys this block needs: 0 .. max position of its rows
    for (int r = 0; r < kRows; r++) len = max(len, row_pos[r] + 1);
    int my_pos[4];
    float m[4], l[4], acc[4][kCols];
#pragma unroll
    for (int a = 0; a < 4; a++) {
        my_pos[a] = row_pos[ty + 16 * a];
        m[a] = -INFINITY;
        l[a] = 0.0f;
#pragma unroll
        for (int c = 0; c < kCols; c++) acc[a][c] = 0.0f;
    }

    for (int t0 = blockIdx.z * kKeys; t0 < len; t0 += gridDim.z * kKeys) {
        // K and V tiles; keys past len are zero (rows of the cache past max(pos) need not exist).
        for (int e = tid; e < kKeys * D; e += kThreads) {
            const int kk = e / D, c = e % D, t = t0 + kk;
            const bool in = t < len && c < head_dim;
            const int64_t off = t * kv_stride + kvh * head_dim + c;
            kp[kk * L::kQStride + c] = in ? k[off] : 0.0f;
            vs[kk * D + c] = in ? v[off] : 0.0f;
        }
        __syncthreads();

        // S[rows, keys] = Q K^T, 4 x 4 per thread, in log2 units.
        float s[4][4] = {};
#pragma unroll 8
        for (int c = 0; c < D; c++) {
            float qa[4], kb[4];
#pragma unroll
            for (int a = 0; a < 4; a++) qa[a] = qs[(ty + 16 * a) * L::kQStride + c];
#pragma unroll
            for (int b = 0; b < 4; b++) kb[b] = kp[(tx + 16 * b) * L::kQStride + c];
#pragma unroll
            for (int a = 0; a < 4; a++)
#pragma unroll
                for (int b = 0; b < 4; b++) s[a][b] += qa[a] * kb[b];
        }
        __syncthreads();  // the K tile is read; its space now takes P

        // Online softmax. A row's 64 scores lie in the 16 threads sharing ty: a half warp, so xor shuffles
        // with offsets < 16 reduce exactly that row.
#pragma unroll
        for (int a = 0; a < 4; a++) {
            float mx = -INFINITY;
#pragma unroll
            for (int b = 0; b < 4; b++) {
                if (t0 + tx + 16 * b > my_pos[a]) s[a][b] = -INFINITY;
                mx = fmaxf(mx, s[a][b]);
            }
            for (int off = 8; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(sg::kFullMask, mx, off));
            const float m_new = fmaxf(m[a], mx);
            // A row with no visible key yet (only rows past the end) keeps m = -inf: subtract 0 instead so
            // that exp2(-inf - m) gives 0 rather than NaN.
            const float m_ref = m_new == -INFINITY ? 0.0f : m_new;
            const float corr = exp2f(m[a] - m_ref);
            float sum = 0.0f;
#pragma unroll
            for (int b = 0; b < 4; b++) {
                const float p = exp2f(s[a][b] - m_ref);
                kp[(ty + 16 * a) * L::kPStride + tx + 16 * b] = p;
                sum += p;
            }
            for (int off = 8; off > 0; off >>= 1) sum += __shfl_xor_sync(sg::kFullMask, sum, off);
            l[a] = l[a] * corr + sum;
            m[a] = m_new;
#pragma unroll
            for (int c = 0; c < kCols; c++) acc[a][c] *= corr;
        }
        __syncthreads();

        // acc[rows, cols] += P V
#pragma unroll 4
        for (int kk = 0; kk < kKeys; kk++) {
            float p[4], vv[kCols];
#pragma unroll
            for (int a = 0; a < 4; a++) p[a] = kp[(ty + 16 * a) * L::kPStride + kk];
#pragma unroll
            for (int c = 0; c < kCols; c++) vv[c] = vs[kk * D + tx + 16 * c];
#pragma unroll
            for (int a = 0; a < 4; a++)
#pragma unroll
                for (int c = 0; c < kCols; c++) acc[a][c] += p[a] * vv[c];
        }
        __syncthreads();  // P and V are read; the next tile may overwrite them
    }

    // Output row R = query * n_heads + head, as laid out in out. Split blocks leave acc unnormalised and
    // store m and l beside it: partial[z][R] = {acc[head_dim], m, l}.
#pragma unroll
    for (int a = 0; a < 4; a++) {
        const int gr = row0 + ty + 16 * a;
        if (gr >= rows_total) continue;
        const int64_t R = (int64_t)(gr / group) * n_heads + kvh * group + gr % group;
        if (gridDim.z == 1) {
            float *o = out + R * head_dim;
            const float inv = 1.0f / l[a];
#pragma unroll
            for (int c = 0; c < kCols; c++)
                if (tx + 16 * c < head_dim) o[tx + 16 * c] = acc[a][c] * inv;
        } else {
            float *p = partial + (blockIdx.z * (int64_t)n * n_heads + R) * (head_dim + 2);
#pragma unroll
            for (int c = 0; c < kCols; c++)
                if (tx + 16 * c < head_dim) p[tx + 16 * c] = acc[a][c];
            if (tx == 0) {
                p[head_dim] = m[a];
                p[head_dim + 1] = l[a];
            }
        }
    }
}

// out[R, c] from the split partials: with M = max_z m_z, out = sum_z 2^(m_z - M) acc_z / sum_z 2^(m_z - M) l_z.
// A split that saw no key of row R has m_z = -inf and weighs 0; split 0 always sees key 0, so M is finite.
__global__ void attention_merge_kernel(float *__restrict__ out, const float *__restrict__ partial, int64_t rows,
                                       int head_dim, int n_splits) {
    const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= rows * head_dim) return;
    const int64_t R = e / head_dim;
    const int c = (int)(e % head_dim);
    const int64_t split_stride = rows * (head_dim + 2);
    const float *p = partial + R * (head_dim + 2);
    float mx = -INFINITY;
    for (int z = 0; z < n_splits; z++) mx = fmaxf(mx, p[z * split_stride + head_dim]);
    float num = 0.0f, den = 0.0f;
    for (int z = 0; z < n_splits; z++) {
        const float *pz = p + z * split_stride;
        const float w = exp2f(pz[head_dim] - mx);
        num += w * pz[c];
        den += w * pz[head_dim + 1];
    }
    out[e] = num / den;
}

// One warp per (query, head) row R = i * n_heads + h and key split z = blockIdx.y: keys
// [z * per, min((z + 1) * per, len)) of query i's cache, len = pos[i] + 1, per = ceil(len / splits). Lane l owns
// columns l + 32j (j < C, head_dim <= 32 C). Warps of a block are adjacent heads of one query, so the heads of a
// GQA group read the same K/V rows through L1. Partials as in the tiled kernel: {acc, m, l} per (z, R); a split
// past the end of a short sequence leaves m = -inf, l = 0 and weighs nothing in the merge.
template <int C>
__global__ void attention_rows_kernel(float *__restrict__ out, float *__restrict__ partial, const float *__restrict__ q,
                                      const float *__restrict__ k, const float *__restrict__ v,
                                      const int32_t *__restrict__ pos, const int32_t *__restrict__ kv_start, int n,
                                      int n_heads, int n_kv_heads, int head_dim, float scale_log2) {
    const int64_t R = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (R >= (int64_t)n * n_heads) return;
    const int i = (int)(R / n_heads), h = (int)(R % n_heads), kvh = h / (n_heads / n_kv_heads);
    const int64_t kv_stride = (int64_t)n_kv_heads * head_dim;
    const float *kr = k + (int64_t)kv_start[i] * kv_stride + kvh * head_dim;
    const float *vr = v + (int64_t)kv_start[i] * kv_stride + kvh * head_dim;
    const int len = pos[i] + 1, splits = gridDim.y, per = (len + splits - 1) / splits;
    const int t_begin = blockIdx.y * per, t_end = min(len, t_begin + per);

    float qr[C], acc[C];
#pragma unroll
    for (int j = 0; j < C; j++) {
        const int c = lane + 32 * j;
        qr[j] = c < head_dim ? q[R * head_dim + c] * scale_log2 : 0.0f;
        acc[j] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int t = t_begin; t < t_end; t++) {
        const float *kt = kr + t * kv_stride, *vt = vr + t * kv_stride;
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < C; j++)
            if (lane + 32 * j < head_dim) s += qr[j] * kt[lane + 32 * j];
        s = sg::warp_sum(s);  // every lane holds the score (log2 units)
        const float m_new = fmaxf(m, s), corr = exp2f(m - m_new), p = exp2f(s - m_new);
        l = l * corr + p;
#pragma unroll
        for (int j = 0; j < C; j++)
            if (lane + 32 * j < head_dim) acc[j] = acc[j] * corr + p * vt[lane + 32 * j];
        m = m_new;
    }

    if (gridDim.y == 1) {
        const float inv = 1.0f / l;  // len >= 1: the only split saw key 0
#pragma unroll
        for (int j = 0; j < C; j++)
            if (lane + 32 * j < head_dim) out[R * head_dim + lane + 32 * j] = acc[j] * inv;
    } else {
        float *p = partial + (blockIdx.y * (int64_t)n * n_heads + R) * (head_dim + 2);
#pragma unroll
        for (int j = 0; j < C; j++)
            if (lane + 32 * j < head_dim) p[lane + 32 * j] = acc[j];
        if (lane == 0) {
            p[head_dim] = m;
            p[head_dim + 1] = l;
        }
    }
}

// Fallback for head sizes the other kernels do not take (tiled > 128, rows > 256) or a device without the
// shared memory for the tiled kernel: one warp per (query, head) row, keys one at a time, unsplit, the
// unnormalised output kept in out itself (each lane owns the columns lane, lane + 32, ...). Slow, but any head
// size works.
__global__ void attention_warp_kernel(float *out, const float *q, const float *k, const float *v,
                                      const int32_t *pos, const int32_t *kv_start, int n, int n_heads,
                                      int n_kv_heads, int head_dim, float scale_log2) {
    const int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (row >= (int64_t)n * n_heads) return;
    const int i = (int)(row / n_heads), h = (int)(row % n_heads), kvh = h / (n_heads / n_kv_heads);
    const int64_t kv_stride = (int64_t)n_kv_heads * head_dim, first = kv_start ? kv_start[i] : 0;
    const float *qi = q + row * head_dim;
    float *oi = out + row * head_dim;
    for (int c = lane; c < head_dim; c += 32) oi[c] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int t = 0; t <= pos[i]; t++) {
        const float *kt = k + (first + t) * kv_stride + kvh * head_dim;
        const float *vt = v + (first + t) * kv_stride + kvh * head_dim;
        float s = 0.0f;
        for (int c = lane; c < head_dim; c += 32) s += qi[c] * kt[c];
        s = sg::warp_sum(s) * scale_log2;
        const float m_new = fmaxf(m, s), corr = exp2f(m - m_new), p = exp2f(s - m_new);
        l = l * corr + p;
        for (int c = lane; c < head_dim; c += 32) oi[c] = oi[c] * corr + p * vt[c];
        m = m_new;
    }
    const float inv = 1.0f / l;
    for (int c = lane; c < head_dim; c += 32) oi[c] *= inv;
}

// What the launcher needs to know about the current device, read once per thread and device.
struct DeviceInfo {
    int device = -1, sms = 0, smem_optin = 0;
    cudaMemPool_t pool = nullptr;  // scratch for split partials; null if it could not be created
};

// A memory pool per device that never returns its memory to the driver (release threshold: max), so that
// stream-ordered scratch allocations are served from memory already mapped.
cudaMemPool_t scratch_pool(int dev) {
    static std::mutex mu;
    static std::unordered_map<int, cudaMemPool_t> pools;
    std::lock_guard<std::mutex> lock(mu);
    auto it = pools.find(dev);
    if (it != pools.end()) return it->second;
    cudaMemPoolProps props = {};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = dev;
    cudaMemPool_t pool = nullptr;
    if (cudaMemPoolCreate(&pool, &props) != cudaSuccess) {
        cudaGetLastError();  // clear the error: attention then runs unsplit
        pool = nullptr;
    } else {
        uint64_t keep_all = UINT64_MAX;
        cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep_all);
    }
    pools[dev] = pool;
    return pool;
}

const DeviceInfo *device_info() {
    static thread_local DeviceInfo info;
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return nullptr;
    if (info.device != dev) {
        DeviceInfo fresh;
        if (cudaDeviceGetAttribute(&fresh.sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
            cudaDeviceGetAttribute(&fresh.smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess)
            return nullptr;
        fresh.pool = scratch_pool(dev);
        fresh.device = dev;
        info = fresh;
    }
    return &info;
}

// Scratch for the partial results of `splits` key splits, [splits][rows][head_dim + 2], from the pool; splits
// drops to 1 (null scratch) when there is nothing to split, no pool, or no memory left in it.
float *split_scratch(const DeviceInfo &dev, int &splits, int64_t rows, int head_dim, cudaStream_t stream) {
    if (splits <= 1) return nullptr;
    const size_t bytes = sizeof(float) * splits * rows * (head_dim + 2);
    float *partial = nullptr;
    if (!dev.pool || cudaMallocFromPoolAsync((void **)&partial, bytes, dev.pool, stream) != cudaSuccess) {
        cudaGetLastError();  // clear the failed allocation's error: the unsplit kernel does the work
        splits = 1;
        return nullptr;
    }
    return partial;
}

// out from the split partials (see attention_merge_kernel), then the scratch back to the pool; nothing when
// the kernel ran unsplit and wrote out itself.
void merge_splits(float *out, float *partial, int64_t rows, int head_dim, int splits, cudaStream_t stream) {
    if (splits <= 1) return;
    attention_merge_kernel<<<sg::element_blocks(rows * head_dim), sg::kElementThreads, 0, stream>>>(out, partial, rows,
                                                                                                 head_dim, splits);
    cudaFreeAsync(partial, stream);
}

// Launches the tiled kernel for padded head size D; false if this device lacks the shared memory for it
// (the opt-in limit is 227 KB on Hopper, 99 KB on consumer parts).
template <int D>
bool launch_tiled(const DeviceInfo &dev, float *out, const float *q, const float *k, const float *v,
                  const int32_t *pos, int n, int n_heads, int n_kv_heads, int head_dim, float scale_log2,
                  cudaStream_t stream) {
    constexpr size_t bytes = Layout<D>::kBytes;
    static thread_local int configured_device = -1;
    if ((size_t)dev.smem_optin < bytes) return false;
    if (configured_device != dev.device) {
        if (cudaFuncSetAttribute(attention_tiled_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 (int)bytes) != cudaSuccess)
            return false;
        configured_device = dev.device;
    }
    const int row_tiles = (int)(((int64_t)n * (n_heads / n_kv_heads) + kRows - 1) / kRows);
    // Aim at two resident blocks per multiprocessor (what the shared memory allows at D = 128).
    constexpr int kMaxSplits = 64;
    const int64_t blocks = (int64_t)row_tiles * n_kv_heads;
    int splits = blocks >= dev.sms ? 1 : (int)((2 * dev.sms + blocks - 1) / blocks);
    splits = splits > kMaxSplits ? kMaxSplits : splits;
    const int64_t rows = (int64_t)n * n_heads;
    float *partial = split_scratch(dev, splits, rows, head_dim, stream);
    attention_tiled_kernel<D><<<dim3(row_tiles, n_kv_heads, splits), kThreads, bytes, stream>>>(
        out, partial, q, k, v, pos, n, n_heads, n_kv_heads, head_dim, scale_log2);
    merge_splits(out, partial, rows, head_dim, splits, stream);
    return true;
}

// Launches the per-query-cache kernel for head_dim <= 32 C. Splits aim at ~48 resident warps per
// multiprocessor: a decode step is bound by reading K and V, and only many loads in flight reach the bandwidth.
template <int C>
void launch_rows(const DeviceInfo &dev, float *out, const float *q, const float *k, const float *v,
                 const int32_t *pos, const int32_t *kv_start, int n, int n_heads, int n_kv_heads, int head_dim,
                 float scale_log2, cudaStream_t stream) {
    constexpr int kWarpsPerBlock = 4, kMaxSplits = 64;
    const int64_t rows = (int64_t)n * n_heads, target = 48LL * dev.sms;
    int splits = rows >= target ? 1 : (int)((target + rows - 1) / rows);
    splits = splits > kMaxSplits ? kMaxSplits : splits;
    float *partial = split_scratch(dev, splits, rows, head_dim, stream);
    const dim3 grid((unsigned)((rows + kWarpsPerBlock - 1) / kWarpsPerBlock), splits);
    attention_rows_kernel<C><<<grid, 32 * kWarpsPerBlock, 0, stream>>>(out, partial, q, k, v, pos, kv_start, n,
                                                                       n_heads, n_kv_heads, head_dim, scale_log2);
    merge_splits(out, partial, rows, head_dim, splits, stream);
}

}  // namespace

void sg_cuda_attention(float *out, const float *q, const float *k, const float *v, const int32_t *pos,
                       const int32_t *kv_start, int n, int n_heads, int n_kv_heads, int head_dim, void *stream) {
    if (n <= 0 || n_heads <= 0 || head_dim <= 0) return;
    cudaStream_t s = (cudaStream_t)stream;
    const float scale_log2 = (float)(M_LOG2E / std::sqrt((double)head_dim));
    const DeviceInfo *dev = device_info();
    bool done = false;
    if (dev && kv_start) {
        auto rows = [&](auto launch) {
            launch(*dev, out, q, k, v, pos, kv_start, n, n_heads, n_kv_heads, head_dim, scale_log2, s);
            return true;
        };
        done = head_dim <= 32    ? rows(launch_rows<1>)
               : head_dim <= 64  ? rows(launch_rows<2>)
               : head_dim <= 128 ? rows(launch_rows<4>)
               : head_dim <= 256 ? rows(launch_rows<8>)
                                 : false;
    } else if (dev) {
        auto tiled = [&](auto launch) {
            return launch(*dev, out, q, k, v, pos, n, n_heads, n_kv_heads, head_dim, scale_log2, s);
        };
        done = head_dim <= 32    ? tiled(launch_tiled<32>)
               : head_dim <= 64  ? tiled(launch_tiled<64>)
               : head_dim <= 128 ? tiled(launch_tiled<128>)
                                 : false;
    }
    if (!done) {
        constexpr int kWarpsPerBlock = 8;
        const int64_t rows = (int64_t)n * n_heads;
        attention_warp_kernel<<<(unsigned)((rows + kWarpsPerBlock - 1) / kWarpsPerBlock), 32 * kWarpsPerBlock, 0,
                                s>>>(out, q, k, v, pos, kv_start, n, n_heads, n_kv_heads, head_dim, scale_log2);
    }
}
