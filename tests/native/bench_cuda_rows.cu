// Bandwidth of the routed-row kernels next to a plain device-to-device copy of the same bytes, and timings of
// rmsnorm, causal prefill attention and batched decode attention at LLaMA-2-7B / LLaMA-3-8B shapes. Prints
// markdown tables.
// CUDA events, warm-up, median of repetitions. Exits 77 where no CUDA device is usable.
#include "check.h"
#include "skipgpt.h"

#include <cuda_runtime.h>

#include <cstdlib>
#include <functional>

namespace {

cudaStream_t stream;

void cuda_ok(cudaError_t e, const char *what, int line) {
    if (e != cudaSuccess) {
        std::printf("CUDA error at line %d (%s): %s\n", line, what, cudaGetErrorString(e));
        std::exit(1);
    }
}
#define CUDA_OK(call) cuda_ok((call), #call, __LINE__)

template <typename T>
T *dev_upload(const std::vector<T> &h) {
    T *p = nullptr;
    CUDA_OK(cudaMalloc(&p, h.size() * sizeof(T)));
    CUDA_OK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return p;
}

float *dev_random(Rng &rng, size_t len) { return dev_upload(random_floats(rng, len)); }

// Median over `samples` of the time of one call, each sample timing `inner` back-to-back calls (so that
// short kernels are not dominated by event resolution), after 3 warm-up calls.
double median_us(const std::function<void()> &call, int samples, int inner) {
    cudaEvent_t start, stop;
    CUDA_OK(cudaEventCreate(&start));
    CUDA_OK(cudaEventCreate(&stop));
    for (int i = 0; i < 3; i++) call();
    CUDA_OK(cudaGetLastError());
    std::vector<double> us(samples);
    for (int s = 0; s < samples; s++) {
        CUDA_OK(cudaEventRecord(start, stream));
        for (int i = 0; i < inner; i++) call();
        CUDA_OK(cudaEventRecord(stop, stream));
        CUDA_OK(cudaEventSynchronize(stop));
        float ms = 0;
        CUDA_OK(cudaEventElapsedTime(&ms, start, stop));
        us[s] = 1000.0 * ms / inner;
    }
    CUDA_OK(cudaGetLastError());
    CUDA_OK(cudaEventDestroy(start));
    CUDA_OK(cudaEventDestroy(stop));
    std::sort(us.begin(), us.end());
    return us[samples / 2];
}

void bench_rows(Rng &rng) {
    std::printf("\n### Routed rows (fp32): gather / scatter-add vs cudaMemcpyAsync D2D of the same row bytes\n\n");
    std::printf("GB/s counts bytes read + written: gather 2x, scatter-add 3x, copy 2x the moved rows.\n\n");
    std::printf("| d | rows | keep | kept rows | copy GB/s | gather us | gather GB/s | gather/copy | scatter-add us | "
                "scatter-add GB/s | scatter/copy |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int d : {4096, 8192}) {
        for (int n : {4096, 8192, 16384}) {
            float *residual = dev_random(rng, (size_t)n * d);
            float *rows = dev_random(rng, (size_t)n * d);
            for (double keep : {0.6, 0.75}) {
                auto idx = random_subset(rng, n, (int)(keep * n));
                std::sort(idx.begin(), idx.end());  // compaction yields ascending indices
                const int count = (int)idx.size();
                int32_t *didx = dev_upload(idx);
                const double bytes = (double)count * d * sizeof(float);
                double copy = median_us([&] {
                    CUDA_OK(cudaMemcpyAsync(rows, residual, (size_t)bytes, cudaMemcpyDeviceToDevice, stream));
                }, 15, 10);
                double gather = median_us([&] { sg_cuda_gather_rows(rows, residual, didx, count, d, stream); }, 15, 10);
                double scatter =
                    median_us([&] { sg_cuda_scatter_add_rows(residual, rows, didx, count, d, stream); }, 15, 10);
                const double copy_gbs = 2 * bytes / copy / 1e3, gather_gbs = 2 * bytes / gather / 1e3,
                             scatter_gbs = 3 * bytes / scatter / 1e3;
                std::printf("| %d | %d | %.2f | %d | %.0f | %.1f | %.0f | %.2f | %.1f | %.0f | %.2f |\n", d, n, keep,
                            count, copy_gbs, gather, gather_gbs, gather_gbs / copy_gbs, scatter, scatter_gbs,
                            scatter_gbs / copy_gbs);
                CUDA_OK(cudaFree(didx));
            }
            CUDA_OK(cudaFree(residual));
            CUDA_OK(cudaFree(rows));
        }
    }
}

void bench_rmsnorm(Rng &rng) {
    std::printf("\n### RMSNorm (fp32)\n\n| n | d | us | GB/s (x read + out written) |\n|---|---|---|---|\n");
    for (int d : {4096, 8192}) {
        const int n = 4096;
        float *x = dev_random(rng, (size_t)n * d), *w = dev_random(rng, d), *out = dev_random(rng, (size_t)n * d);
        double us = median_us([&] { sg_cuda_rmsnorm(out, x, w, n, d, 1e-5f, stream); }, 15, 10);
        std::printf("| %d | %d | %.1f | %.0f |\n", n, d, us, 2.0 * n * d * sizeof(float) / us / 1e3);
        CUDA_OK(cudaFree(x));
        CUDA_OK(cudaFree(w));
        CUDA_OK(cudaFree(out));
    }
}

void bench_attention(Rng &rng) {
    std::printf("\n### Causal attention (fp32, CUDA cores)\n\n");
    std::printf("FLOPs = 4 * head_dim * heads * sum over queries of (pos + 1) (QK^T and PV, causal half). "
                "Decode is bound by reading the K/V cache once: its GB/s counts those bytes.\n\n");
    std::printf("| case | queries | cache | heads / kv heads | head_dim | ms | TFLOP/s | K/V GB/s |\n"
                "|---|---|---|---|---|---|---|---|\n");
    struct Case {
        const char *name;
        int t, n_heads, n_kv_heads;
        double keep;  // fraction of queries kept (routed prefill); 0 = one query at the last position
    };
    const int hd = 128;
    for (Case c : {Case{"LLaMA-2-7B prefill", 4096, 32, 32, 1.0}, Case{"LLaMA-3-8B prefill", 4096, 32, 8, 1.0},
                   Case{"LLaMA-3-8B routed prefill", 4096, 32, 8, 0.6}, Case{"LLaMA-2-7B decode", 4096, 32, 32, 0.0},
                   Case{"LLaMA-3-8B decode", 8192, 32, 8, 0.0}}) {
        std::vector<int32_t> pos = c.keep == 0.0 ? std::vector<int32_t>{c.t - 1}
                                   : c.keep == 1.0 ? contiguous_positions(c.t, 0)
                                                   : kept_positions(rng, c.t, c.keep);
        const int n = (int)pos.size();
        float *q = dev_random(rng, (size_t)n * c.n_heads * hd), *out = dev_random(rng, (size_t)n * c.n_heads * hd);
        float *k = dev_random(rng, (size_t)c.t * c.n_kv_heads * hd), *v = dev_random(rng, (size_t)c.t * c.n_kv_heads * hd);
        int32_t *dpos = dev_upload(pos);
        double flops = 0;
        for (int p : pos) flops += 4.0 * hd * c.n_heads * (p + 1);
        double us = median_us([&] { sg_cuda_attention(out, q, k, v, dpos, nullptr, n, c.n_heads, c.n_kv_heads, hd,
                                                       stream); },
                              c.keep == 0.0 ? 15 : 7, c.keep == 0.0 ? 10 : 1);
        const double kv_gbs = 2.0 * c.t * c.n_kv_heads * hd * sizeof(float) / us / 1e3;
        std::printf("| %s | %d | %d | %d / %d | %d | %.3f | %.2f | ", c.name, n, c.t, c.n_heads, c.n_kv_heads, hd,
                    us / 1e3, flops / us / 1e6);
        if (c.keep == 0.0) std::printf("%.0f |\n", kv_gbs);
        else std::printf("- |\n");
        for (float *p : {q, out, k, v}) CUDA_OK(cudaFree(p));
        CUDA_OK(cudaFree(dpos));
    }
}

// A decode step of a batch: one query per sequence, each against its own cache. Either one call per sequence
// (its cache alone: the tiled kernel) or one call over a shared k, v with per-query starts (the per-query
// kernel). Device time only; the host also saves a launch per sequence with the second.
void bench_batched_decode(Rng &rng) {
    std::printf("\n### Batched decode attention (fp32): one call per sequence vs one call with kv_start\n\n");
    std::printf("| shape | sequences x context | per-sequence calls ms | one call ms | speedup | one call K/V GB/s |\n"
                "|---|---|---|---|---|---|\n");
    struct Case {
        const char *name;
        int n_heads, n_kv_heads, batch, context;
    };
    const int hd = 128;
    for (Case c : {Case{"LLaMA-2-7B", 32, 32, 16, 512}, Case{"LLaMA-3-8B", 32, 8, 16, 512},
                   Case{"LLaMA-3-8B", 32, 8, 64, 2048}}) {
        const int t = c.batch * c.context;
        std::vector<int32_t> pos(c.batch, c.context - 1), start(c.batch);
        for (int b = 0; b < c.batch; b++) start[b] = b * c.context;
        float *q = dev_random(rng, (size_t)c.batch * c.n_heads * hd), *out = dev_random(rng, (size_t)c.batch * c.n_heads * hd);
        float *k = dev_random(rng, (size_t)t * c.n_kv_heads * hd), *v = dev_random(rng, (size_t)t * c.n_kv_heads * hd);
        int32_t *dpos = dev_upload(pos), *dstart = dev_upload(start);
        const int64_t q_row = (int64_t)c.n_heads * hd, kv_slot = (int64_t)c.context * c.n_kv_heads * hd;
        double per_sequence = median_us([&] {
            for (int b = 0; b < c.batch; b++)
                sg_cuda_attention(out + b * q_row, q + b * q_row, k + b * kv_slot, v + b * kv_slot, dpos + b, nullptr,
                                  1, c.n_heads, c.n_kv_heads, hd, stream);
        }, 15, 5);
        double one_call = median_us([&] {
            sg_cuda_attention(out, q, k, v, dpos, dstart, c.batch, c.n_heads, c.n_kv_heads, hd, stream);
        }, 15, 5);
        std::printf("| %s | %d x %d | %.3f | %.3f | %.2fx | %.0f |\n", c.name, c.batch, c.context, per_sequence / 1e3,
                    one_call / 1e3, per_sequence / one_call, 2.0 * t * c.n_kv_heads * hd * sizeof(float) / one_call / 1e3);
        for (float *p : {q, out, k, v}) CUDA_OK(cudaFree(p));
        CUDA_OK(cudaFree(dpos));
        CUDA_OK(cudaFree(dstart));
    }
}

}  // namespace

int main() {
    int devices = 0;
    cudaError_t e = cudaGetDeviceCount(&devices);
    if (e != cudaSuccess || devices == 0) {
        std::printf("no CUDA device: skipping (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return 77;
    }
    cudaDeviceProp prop;
    CUDA_OK(cudaGetDeviceProperties(&prop, 0));
    std::printf("## bench_cuda_rows on %s (%d SMs, %.0f GiB)\n", prop.name, prop.multiProcessorCount,
                prop.totalGlobalMem / 1073741824.0);
    CUDA_OK(cudaStreamCreate(&stream));
    Rng rng(4242);
    bench_rows(rng);
    bench_rmsnorm(rng);
    bench_attention(rng);
    bench_batched_decode(rng);
    CUDA_OK(cudaStreamDestroy(stream));
    return 0;
}
