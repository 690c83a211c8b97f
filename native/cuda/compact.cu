// Compaction of a routing decision on the device (CUDA twin of native/cpu/compact.cpp): keep mask ->
// ascending indices of the kept rows, and their count in device memory, so the routed sublayer's kernels can
// follow without a host round trip.
#include "common.cuh"
#include "skipgpt.h"

namespace {

constexpr int kThreads = 1024;  // 32 warps: the warp totals of one step fit one warp's scan

// keep[n] -> idx[0 .. *count), *count. One block walks the mask in steps of kThreads entries: a ballot gives
// each thread its rank inside its warp, a scan over the 32 warp totals gives the warp's offset, and the
// running base carries the count of earlier steps. n is a token count (thousands), so one block is enough.
__global__ void __launch_bounds__(kThreads) compact_kernel(int32_t *idx, int32_t *count, const uint8_t *keep,
                                                           int n) {
    __shared__ int warp_offset[32];
    __shared__ int step_total;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int base = 0;
    for (int start = 0; start < n; start += kThreads) {
        const int i = start + threadIdx.x;
        const bool kept = i < n && keep[i] != 0;
        const unsigned ballot = __ballot_sync(sg::kFullMask, kept);
        if (lane == 0) warp_offset[warp] = __popc(ballot);
        __syncthreads();
        if (warp == 0) {
            const int mine = warp_offset[lane];
            int incl = mine;
            for (int off = 1; off < 32; off <<= 1) {
                const int up = __shfl_up_sync(sg::kFullMask, incl, off);
                if (lane >= off) incl += up;
            }
            warp_offset[lane] = incl - mine;
            if (lane == 31) step_total = incl;
        }
        __syncthreads();
        if (kept) idx[base + warp_offset[warp] + __popc(ballot & ((1u << lane) - 1))] = i;
        base += step_total;
        __syncthreads();  // warp_offset and step_total are rewritten by the next step
    }
    if (threadIdx.x == 0) *count = base;
}

}  // namespace

void sg_cuda_compact(int32_t *idx, int32_t *count, const uint8_t *keep, int n, void *stream) {
    compact_kernel<<<1, kThreads, 0, (cudaStream_t)stream>>>(idx, count, keep, n < 0 ? 0 : n);
}
