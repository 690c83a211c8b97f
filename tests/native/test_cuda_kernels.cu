// Every sg_cuda_* kernel against its sg_cpu_* twin (which test_cpu_kernels checks against plain references),
// on random inputs of awkward shapes. Device outputs are poisoned with 0xFF bytes (NaN as float, -1 as int)
// before each kernel runs. Exits 77 (CTest: skipped) where no CUDA device is usable.
#include "check.h"
#include "skipgpt.h"
#include "skipgpt_training.h"

#include <cuda_runtime.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace {

Checker checker;
Rng rng(77031);
char shape[160];
cudaStream_t stream;

void cuda_ok(cudaError_t e, const char *what, int line) {
    if (e != cudaSuccess) {
        std::printf("CUDA error at line %d (%s): %s\n", line, what, cudaGetErrorString(e));
        std::exit(1);
    }
}
#define CUDA_OK(call) cuda_ok((call), #call, __LINE__)

// Launch errors, then execution errors, of the kernel just enqueued.
#define KERNEL_DONE()                                  \
    do {                                               \
        CUDA_OK(cudaGetLastError());                   \
        CUDA_OK(cudaStreamSynchronize(stream));        \
        CUDA_OK(cudaDeviceSynchronize());              \
    } while (0)

// A device copy of a host vector (or a poisoned buffer); freed on scope exit.
template <typename T>
struct Dev {
    T *p = nullptr;
    size_t len = 0;
    explicit Dev(size_t n) : len(n) {
        CUDA_OK(cudaMalloc(&p, (n ? n : 1) * sizeof(T)));
        CUDA_OK(cudaMemset(p, 0xFF, (n ? n : 1) * sizeof(T)));
    }
    explicit Dev(const std::vector<T> &h) : Dev(h.size()) {
        CUDA_OK(cudaMemcpy(p, h.data(), len * sizeof(T), cudaMemcpyHostToDevice));
    }
    Dev(const Dev &) = delete;
    Dev &operator=(const Dev &) = delete;
    ~Dev() { cudaFree(p); }
    std::vector<T> host() const {
        std::vector<T> h(len);
        CUDA_OK(cudaMemcpy(h.data(), p, len * sizeof(T), cudaMemcpyDeviceToHost));
        return h;
    }
};

void check_rmsnorm(int n, int d, float eps, int offset, bool in_place) {
    // offset shifts the buffers by a few floats: d % 4 == 0 but unaligned must take the scalar path.
    auto x = random_floats(rng, (size_t)n * d + offset, -2.0f, 2.0f), w = random_floats(rng, d + offset, 0.5f, 1.5f);
    std::vector<float> ref((size_t)n * d);
    sg_cpu_rmsnorm(ref.data(), x.data() + offset, w.data() + offset, n, d, eps);
    Dev<float> dx(x), dw(w), dout((size_t)n * d + offset);
    float *out = in_place ? dx.p + offset : dout.p + offset;
    sg_cuda_rmsnorm(out, dx.p + offset, dw.p + offset, n, d, eps, stream);
    KERNEL_DONE();
    auto got = (in_place ? dx : dout).host();
    std::snprintf(shape, sizeof shape, "n=%d d=%d%s%s", n, d, offset ? " unaligned" : "", in_place ? " in place" : "");
    checker.compare("rmsnorm", shape, got.data() + offset, ref.data(), ref.size(), 1e-5);
}

void check_rope(int n, int n_heads, int hd, float theta, int rotate_half, int max_pos) {
    auto x = random_floats(rng, (size_t)n * n_heads * hd);
    std::vector<int32_t> pos(n);
    for (auto &p : pos) p = rng.below(max_pos + 1);
    pos[0] = max_pos;
    Dev<float> dx(x);
    Dev<int32_t> dpos(pos);
    sg_cpu_rope(x.data(), pos.data(), n, n_heads, hd, theta, rotate_half);
    sg_cuda_rope(dx.p, dpos.p, n, n_heads, hd, theta, rotate_half, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "n=%d H=%d hd=%d theta=%g %s pos<=%d", n, n_heads, hd, theta,
                  rotate_half ? "rotate-half" : "adjacent", max_pos);
    checker.compare("rope", shape, dx.host().data(), x.data(), x.size(), 1e-5);
}

// kv_start empty: one cache for every query (tiled kernel); else query i's cache begins at row kv_start[i]
// (the per-query-cache kernel).
void check_attention(const char *what, const std::vector<int32_t> &pos, int t, int n_heads, int n_kv_heads, int hd,
                     const std::vector<int32_t> &kv_start = {}) {
    int n = (int)pos.size();
    auto q = random_floats(rng, (size_t)n * n_heads * hd, -2.0f, 2.0f);
    auto k = random_floats(rng, (size_t)t * n_kv_heads * hd, -2.0f, 2.0f);
    auto v = random_floats(rng, (size_t)t * n_kv_heads * hd);
    std::vector<float> ref(q.size());
    const int32_t *starts = kv_start.empty() ? nullptr : kv_start.data();
    sg_cpu_attention(ref.data(), q.data(), k.data(), v.data(), pos.data(), starts, n, n_heads, n_kv_heads, hd);
    Dev<float> dq(q), dk(k), dv(v), dout(q.size());
    Dev<int32_t> dpos(pos), dstart(kv_start.empty() ? std::vector<int32_t>{0} : kv_start);
    sg_cuda_attention(dout.p, dq.p, dk.p, dv.p, dpos.p, starts ? dstart.p : nullptr, n, n_heads, n_kv_heads, hd,
                      stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "%s n=%d t=%d H=%d Hkv=%d hd=%d", what, n, t, n_heads, n_kv_heads, hd);
    checker.compare("attention", shape, dout.host().data(), ref.data(), ref.size(), 1e-4);
}

void check_swiglu(int64_t len, bool in_place) {
    auto gate = random_floats(rng, len, -12.0f, 12.0f), up = random_floats(rng, len, -2.0f, 2.0f);
    std::vector<float> ref(len);
    sg_cpu_swiglu(ref.data(), gate.data(), up.data(), len);
    Dev<float> dg(gate), du(up), dout(len);
    sg_cuda_swiglu(in_place ? dg.p : dout.p, dg.p, du.p, len, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "len=%lld%s", (long long)len, in_place ? " in place" : "");
    checker.compare("swiglu", shape, (in_place ? dg : dout).host().data(), ref.data(), ref.size(), 1e-4);
}

void check_softmax(int n, int d, float range) {
    auto x = random_floats(rng, (size_t)n * d, -range, range);
    Dev<float> dx(x);
    sg_cpu_softmax(x.data(), n, d);
    sg_cuda_softmax(dx.p, n, d, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "n=%d d=%d logits in +-%g", n, d, range);
    checker.compare("softmax", shape, dx.host().data(), x.data(), x.size(), 1e-4);
}

void check_embedding(int vocab, int n, int d) {
    auto table = random_floats(rng, (size_t)vocab * d);
    std::vector<int32_t> ids(n);
    for (auto &id : ids) id = rng.below(vocab);
    ids[0] = vocab - 1;
    std::vector<float> ref((size_t)n * d);
    sg_cpu_embedding(ref.data(), table.data(), ids.data(), n, d);
    Dev<float> dt(table), dout(ref.size());
    Dev<int32_t> dids(ids);
    sg_cuda_embedding(dout.p, dt.p, dids.p, n, d, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "vocab=%d n=%d d=%d", vocab, n, d);
    checker.compare("embedding", shape, dout.host().data(), ref.data(), ref.size(), 0.0);
}

void check_gather_rows(int rows, int count, int d) {
    auto src = random_floats(rng, (size_t)rows * d);
    auto idx = random_subset(rng, rows, count);
    std::vector<float> ref((size_t)count * d);
    sg_cpu_gather_rows(ref.data(), src.data(), idx.data(), count, d);
    Dev<float> dsrc(src), dout(ref.size());
    Dev<int32_t> didx(idx);
    sg_cuda_gather_rows(dout.p, dsrc.p, didx.p, count, d, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "rows=%d count=%d d=%d permuted", rows, count, d);
    checker.compare("gather_rows", shape, dout.host().data(), ref.data(), ref.size(), 0.0);
}

// scatter_add_rows or scatter_rows: rows of dst outside idx must come back unchanged.
template <typename CpuScatter, typename CudaScatter>
void check_scatter(const char *name, CpuScatter cpu, CudaScatter cuda, int rows, int count, int d) {
    auto dst = random_floats(rng, (size_t)rows * d), src = random_floats(rng, (size_t)count * d);
    auto idx = random_subset(rng, rows, count);
    Dev<float> ddst(dst), dsrc(src);
    Dev<int32_t> didx(idx);
    cpu(dst.data(), src.data(), idx.data(), count, d);
    cuda(ddst.p, dsrc.p, didx.p, count, d, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "rows=%d count=%d d=%d permuted", rows, count, d);
    checker.compare(name, shape, ddst.host().data(), dst.data(), dst.size(), 0.0);
}

void check_scatter_add_rows(int rows, int count, int d) {
    check_scatter("scatter_add_rows", sg_cpu_scatter_add_rows, sg_cuda_scatter_add_rows, rows, count, d);
}

void check_scatter_rows(int rows, int count, int d) {
    check_scatter("scatter_rows", sg_cpu_scatter_rows, sg_cuda_scatter_rows, rows, count, d);
}

void check_add(int64_t len) {
    auto dst = random_floats(rng, len), src = random_floats(rng, len);
    Dev<float> ddst(dst), dsrc(src);
    sg_cpu_add(dst.data(), src.data(), len);
    sg_cuda_add(ddst.p, dsrc.p, len, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "len=%lld", (long long)len);
    checker.compare("add", shape, ddst.host().data(), dst.data(), dst.size(), 0.0);
}

void check_cross_entropy(int n, int vocab, float range) {
    auto logits = random_floats(rng, (size_t)n * vocab, -range, range);
    std::vector<int32_t> targets(n);
    for (auto &t : targets) t = rng.below(vocab);
    targets[0] = vocab - 1;
    std::vector<float> ref(n);
    sg_cpu_cross_entropy(ref.data(), logits.data(), targets.data(), n, vocab);
    Dev<float> dl(logits), dloss(n);
    Dev<int32_t> dt(targets);
    sg_cuda_cross_entropy(dloss.p, dl.p, dt.p, n, vocab, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "n=%d vocab=%d logits in +-%g", n, vocab, range);
    checker.compare("cross_entropy", shape, dloss.host().data(), ref.data(), ref.size(), 1e-4);
}

void check_compact(int n, double keep_prob) {
    std::vector<uint8_t> keep(n);
    for (auto &k : keep) k = rng.uniform() < keep_prob ? (uint8_t)(1 + rng.below(255)) : 0;
    std::vector<int32_t> ref(n + 1, -1);  // the spare entry, and those past the count, stay -1
    int32_t ref_count = -1;
    sg_cpu_compact(ref.data(), &ref_count, keep.data(), n);
    Dev<uint8_t> dkeep(keep);
    Dev<int32_t> didx(n + 1), dcount(1);
    sg_cuda_compact(didx.p, dcount.p, dkeep.p, n, stream);
    KERNEL_DONE();
    int32_t count = dcount.host()[0];
    if (count != ref_count) {
        std::printf("compact: n=%d count %d, want %d  FAIL\n", n, count, ref_count);
        checker.failures++;
    }
    std::snprintf(shape, sizeof shape, "n=%d keep=%g -> count %d", n, keep_prob, count);
    checker.compare("compact", shape, didx.host().data(), ref.data(), ref.size(), 0.0);
}

void check_row_dot(int n, int d) {
    auto a = random_floats(rng, (size_t)n * d), b = random_floats(rng, (size_t)n * d);
    std::vector<float> ref(n);
    sg_cpu_row_dot(ref.data(), a.data(), b.data(), n, d);
    Dev<float> da(a), db(b), dout(n);
    sg_cuda_row_dot(dout.p, da.p, db.p, n, d, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "n=%d d=%d", n, d);
    checker.compare("row_dot", shape, dout.host().data(), ref.data(), ref.size(), 1e-5);
}

void check_scale_rows(int n, int d) {
    auto x = random_floats(rng, (size_t)n * d), s = random_floats(rng, n, -2.0f, 2.0f);
    Dev<float> dx(x), ds(s);
    sg_cpu_scale_rows(x.data(), s.data(), n, d);
    sg_cuda_scale_rows(dx.p, ds.p, n, d, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "n=%d d=%d", n, d);
    checker.compare("scale_rows", shape, dx.host().data(), x.data(), x.size(), 0.0);
}

void check_rmsnorm_backward(int n, int d, float eps, bool with_dw) {
    auto x = random_floats(rng, (size_t)n * d, -2.0f, 2.0f), w = random_floats(rng, d, 0.5f, 1.5f);
    auto dy = random_floats(rng, (size_t)n * d), dw = random_floats(rng, d);
    Dev<float> ddy(dy), dxin(x), dwt(w), ddw(dw), ddx(x.size());
    std::vector<float> ref_dx(x.size());
    sg_cpu_rmsnorm_backward(ref_dx.data(), with_dw ? dw.data() : nullptr, dy.data(), x.data(), w.data(), n, d, eps);
    sg_cuda_rmsnorm_backward(ddx.p, with_dw ? ddw.p : nullptr, ddy.p, dxin.p, dwt.p, n, d, eps, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "n=%d d=%d dx", n, d);
    checker.compare("rmsnorm_backward", shape, ddx.host().data(), ref_dx.data(), ref_dx.size(), 1e-5);
    if (with_dw) {
        std::snprintf(shape, sizeof shape, "n=%d d=%d dw +=", n, d);
        checker.compare("rmsnorm_backward", shape, ddw.host().data(), dw.data(), dw.size(), 1e-5);
    }
}

void check_rope_backward(int n, int n_heads, int hd, float theta, int rotate_half, int max_pos) {
    auto x = random_floats(rng, (size_t)n * n_heads * hd);
    std::vector<int32_t> pos(n);
    for (auto &p : pos) p = rng.below(max_pos + 1);
    pos[0] = max_pos;
    Dev<float> dx(x);
    Dev<int32_t> dpos(pos);
    sg_cpu_rope_backward(x.data(), pos.data(), n, n_heads, hd, theta, rotate_half);
    sg_cuda_rope_backward(dx.p, dpos.p, n, n_heads, hd, theta, rotate_half, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "n=%d H=%d hd=%d theta=%g %s pos<=%d", n, n_heads, hd, theta,
                  rotate_half ? "rotate-half" : "adjacent", max_pos);
    checker.compare("rope_backward", shape, dx.host().data(), x.data(), x.size(), 1e-5);
}

void check_attention_backward(const char *what, const std::vector<int32_t> &pos, int t, int n_heads, int n_kv_heads,
                              int hd) {
    int n = (int)pos.size();
    auto q = random_floats(rng, (size_t)n * n_heads * hd, -2.0f, 2.0f);
    auto k = random_floats(rng, (size_t)t * n_kv_heads * hd, -2.0f, 2.0f);
    auto v = random_floats(rng, (size_t)t * n_kv_heads * hd);
    auto dout = random_floats(rng, q.size());
    auto dk = random_floats(rng, k.size()), dv = random_floats(rng, v.size());  // added into
    Dev<float> dq_d(q), dk_in(k), dv_in(v), dout_d(dout), dk_d(dk), dv_d(dv), dq_out(q.size());
    Dev<int32_t> dpos(pos);
    std::vector<float> dq(q.size());
    sg_cpu_attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(), pos.data(),
                              n, n_heads, n_kv_heads, hd);
    sg_cuda_attention_backward(dq_out.p, dk_d.p, dv_d.p, dout_d.p, dq_d.p, dk_in.p, dv_in.p, dpos.p, n, n_heads,
                               n_kv_heads, hd, stream);
    KERNEL_DONE();
    const char *names[] = {"dq", "dk +=", "dv +="};
    const Dev<float> *got[] = {&dq_out, &dk_d, &dv_d};
    const std::vector<float> *want[] = {&dq, &dk, &dv};
    for (int o = 0; o < 3; o++) {
        std::snprintf(shape, sizeof shape, "%s n=%d t=%d H=%d Hkv=%d hd=%d %s", what, n, t, n_heads, n_kv_heads, hd,
                      names[o]);
        checker.compare("attention_backward", shape, got[o]->host().data(), want[o]->data(), want[o]->size(), 1e-4);
    }
}

void check_swiglu_backward(int64_t len, bool in_place) {
    auto gate = random_floats(rng, len, -12.0f, 12.0f), up = random_floats(rng, len, -2.0f, 2.0f);
    auto dout = random_floats(rng, len);
    std::vector<float> ref_dgate(len), ref_dup(len);
    sg_cpu_swiglu_backward(ref_dgate.data(), ref_dup.data(), dout.data(), gate.data(), up.data(), len);
    Dev<float> dg(gate), du(up), ddout(dout), dgate_out(len), dup_out(len);
    // in place: dgate over gate, dup over up
    float *dgate = in_place ? dg.p : dgate_out.p, *dup = in_place ? du.p : dup_out.p;
    sg_cuda_swiglu_backward(dgate, dup, ddout.p, dg.p, du.p, len, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "len=%lld%s dgate", (long long)len, in_place ? " in place" : "");
    checker.compare("swiglu_backward", shape, (in_place ? dg : dgate_out).host().data(), ref_dgate.data(), len, 1e-4);
    std::snprintf(shape, sizeof shape, "len=%lld%s dup", (long long)len, in_place ? " in place" : "");
    checker.compare("swiglu_backward", shape, (in_place ? du : dup_out).host().data(), ref_dup.data(), len, 1e-4);
}

void check_cross_entropy_backward(int n, int vocab, float range, bool per_row, bool in_place) {
    auto logits = random_floats(rng, (size_t)n * vocab, -range, range);
    std::vector<int32_t> targets(n);
    for (auto &t : targets) t = rng.below(vocab);
    targets[0] = vocab - 1;
    auto dloss = random_floats(rng, n, 0.0f, 2.0f);
    const float scale = 1.0f / n;
    std::vector<float> ref(logits.size());
    sg_cpu_cross_entropy_backward(ref.data(), logits.data(), targets.data(), per_row ? dloss.data() : nullptr, scale,
                                  n, vocab);
    Dev<float> dl(logits), ddloss(dloss), dout(logits.size());
    Dev<int32_t> dt(targets);
    float *out = in_place ? dl.p : dout.p;
    sg_cuda_cross_entropy_backward(out, dl.p, dt.p, per_row ? ddloss.p : nullptr, scale, n, vocab, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "n=%d vocab=%d logits in +-%g %s%s", n, vocab, range,
                  per_row ? "dloss[i]/n" : "1/n", in_place ? " in place" : "");
    checker.compare("cross_entropy_bwd", shape, (in_place ? dl : dout).host().data(), ref.data(), ref.size(), 1e-4);
}

void check_lora_forward(int n, int k, int m, int r) {
    auto x = random_floats(rng, (size_t)n * k), a = random_floats(rng, (size_t)r * k);
    auto b = random_floats(rng, (size_t)m * r), out = random_floats(rng, (size_t)n * m);  // added into
    const float scale = 32.0f / r;
    Dev<float> dx(x), da(a), db(b), dout(out);
    sg_cpu_lora_forward(out.data(), x.data(), a.data(), b.data(), n, k, m, r, scale);
    sg_cuda_lora_forward(dout.p, dx.p, da.p, db.p, n, k, m, r, scale, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "n=%d k=%d m=%d r=%d out +=", n, k, m, r);
    checker.compare("lora_forward", shape, dout.host().data(), out.data(), out.size(), 1e-5);
}

void check_lora_backward(int n, int k, int m, int r) {
    auto x = random_floats(rng, (size_t)n * k), a = random_floats(rng, (size_t)r * k);
    auto b = random_floats(rng, (size_t)m * r), dy = random_floats(rng, (size_t)n * m);
    auto dx = random_floats(rng, x.size()), da = random_floats(rng, a.size()), db = random_floats(rng, b.size());
    const float scale = 32.0f / r;
    Dev<float> d_x(x), d_a(a), d_b(b), d_dy(dy), d_dx(dx), d_da(da), d_db(db);  // gradients start random
    sg_cpu_lora_backward(dx.data(), da.data(), db.data(), dy.data(), x.data(), a.data(), b.data(), n, k, m, r, scale);
    sg_cuda_lora_backward(d_dx.p, d_da.p, d_db.p, d_dy.p, d_x.p, d_a.p, d_b.p, n, k, m, r, scale, stream);
    KERNEL_DONE();
    const char *names[] = {"dx +=", "da +=", "db +="};
    const Dev<float> *got[] = {&d_dx, &d_da, &d_db};
    const std::vector<float> *want[] = {&dx, &da, &db};
    for (int o = 0; o < 3; o++) {
        std::snprintf(shape, sizeof shape, "n=%d k=%d m=%d r=%d %s", n, k, m, r, names[o]);
        checker.compare("lora_backward", shape, got[o]->host().data(), want[o]->data(), want[o]->size(), 1e-4);
    }
}

float from_bits(uint32_t bits) {
    float x;
    std::memcpy(&x, &bits, sizeof x);
    return x;
}

// The bf16 nearest to x, ties to the one with an even last bit, found by comparing the distances to the two
// neighbours in double (another route than the kernel's carry trick). Past the largest finite bf16 the upper
// neighbour is inf, one ulp on: values at or above the midpoint round to it, as IEEE rounding does.
// NaN: quiet NaN with sign and top payload bits kept, as skipgpt.h specifies.
uint16_t bf16_reference(float x) {
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    if (std::isnan(x)) return (uint16_t)((bits >> 16) | 0x0040u);
    uint16_t down = (uint16_t)(bits >> 16);  // toward zero
    if ((bits & 0xFFFFu) == 0) return down;  // exact: zeros, infinities, every bf16 value
    int exponent = (down >> 7) & 0xFF;       // biased; 0 for subnormals, which share 2^-126's ulp
    double ulp = std::ldexp(1.0, (exponent ? exponent - 127 : -126) - 7);
    double below = std::fabs((double)x) - std::fabs((double)from_bits((uint32_t)down << 16)), above = ulp - below;
    bool up = below > above || (below == above && (down & 1));
    return up ? (uint16_t)(down + 1) : down;  // + 1 on the magnitude bits: away from zero, either sign
}

// len floats from offset on, converted; the poison 0x7F81 (a signalling NaN, which the kernel never writes) must
// survive before offset and after the end. Inputs mix uniform bit patterns (every class of float), exact ties with
// odd and even kept halves, their neighbours, and special values.
void check_f32_to_bf16(int64_t len, int offset) {
    const int guard = 5;
    const uint32_t special[] = {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00000u,
                                0x7F800001u, 0xFF80FFFFu, 0x7FBFFFFFu, 0x7FFFFFFFu, 0x7F7FFFFFu, 0x7F7F8000u,
                                0x7F7F7FFFu, 0xFF7F8000u, 0x00000001u, 0x00008000u, 0x00018000u, 0x807FFFFFu,
                                0x3F808000u, 0x3F818000u, 0x3F807FFFu, 0x3F808001u, 0xBF818000u, 0x3F800000u};
    const size_t total = (size_t)(offset + len + guard);
    std::vector<float> x(total);
    for (size_t i = 0; i < total; i++) {
        uint32_t r = (uint32_t)rng.next();
        switch (i % 4) {
            case 0: x[i] = from_bits(r); break;
            case 1: x[i] = from_bits((r & 0xFFFF0000u) | 0x8000u); break;                      // a tie
            case 2: x[i] = from_bits((r & 0xFFFF0000u) | (r & 1 ? 0x7FFFu : 0x8001u)); break;  // beside one
            default: x[i] = rng.uniform(-4.0f, 4.0f);
        }
    }
    for (size_t i = 0; i < sizeof special / sizeof *special && i < (size_t)len; i++) x[offset + i] = from_bits(special[i]);
    std::vector<uint16_t> want(total, 0x7F81u);
    for (int64_t i = 0; i < len; i++) want[offset + i] = bf16_reference(x[offset + i]);
    Dev<float> dx(x);
    Dev<uint16_t> dout(std::vector<uint16_t>(total, 0x7F81u));
    sg_cuda_f32_to_bf16(dout.p + offset, dx.p + offset, len, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "len=%lld offset=%d (bits)", (long long)len, offset);
    checker.compare("f32_to_bf16", shape, dout.host().data(), want.data(), total, 0.0);
}

// Causal softmax into bf16 probabilities against a double softmax: each probability within bf16 rounding (2^-9
// relative) and __expf's error; exact zeros past each row's position (the output starts as NaN bits).
void check_attention_probs(int rows, int heads, int t) {
    std::vector<int32_t> pos(rows);
    for (int r = 0; r < rows; r++) pos[r] = r == 0 ? t - 1 : (int)rng.below(t);
    auto s = random_floats(rng, (size_t)heads * rows * t, -8.0f, 8.0f);
    std::vector<double> want(s.size(), 0.0);
    for (int h = 0; h < heads; h++)
        for (int r = 0; r < rows; r++) {
            const float *sr = s.data() + ((size_t)h * rows + r) * t;
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j <= pos[r]; j++) mx = std::max(mx, (double)sr[j]);
            for (int j = 0; j <= pos[r]; j++) sum += std::exp(sr[j] - mx);
            for (int j = 0; j <= pos[r]; j++) want[((size_t)h * rows + r) * t + j] = std::exp(sr[j] - mx) / sum;
        }
    Dev<float> ds(s);
    Dev<int32_t> dpos(pos);
    Dev<uint16_t> dp(std::vector<uint16_t>(s.size(), 0x7F81u));
    sg_cuda_attention_probs_bf16(dp.p, ds.p, dpos.p, rows, heads, t, stream);
    KERNEL_DONE();
    std::vector<uint16_t> bits = dp.host();
    std::vector<float> got(bits.size());
    for (size_t i = 0; i < bits.size(); i++) got[i] = from_bits((uint32_t)bits[i] << 16);
    std::snprintf(shape, sizeof shape, "rows=%d heads=%d t=%d", rows, heads, t);
    checker.compare("attention_probs_bf16", shape, got.data(), want.data(), want.size(), 4e-3);
}

// The generator on the device gives the host's bits: the Gumbel noise of CPU and GPU training is one stream.
__global__ void philox_kernel(uint32_t *out, const uint32_t *in, int count) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= count) return;
    const uint32_t *c = in + 6 * t;
    const sg::Philox4 r = sg::philox4x32_10(sg::Philox4{{c[0], c[1], c[2], c[3]}}, c[4], c[5]);
    for (int w = 0; w < 4; w++) out[4 * t + w] = r.v[w];
}

void check_philox(int count) {
    std::vector<uint32_t> in((size_t)6 * count), ref((size_t)4 * count);
    for (auto &w : in) w = (uint32_t)rng.next();
    for (int t = 0; t < count; t++) {
        const uint32_t *c = in.data() + 6 * t;
        const sg::Philox4 r = sg::philox4x32_10(sg::Philox4{{c[0], c[1], c[2], c[3]}}, c[4], c[5]);
        for (int w = 0; w < 4; w++) ref[4 * t + w] = r.v[w];
    }
    Dev<uint32_t> din(in), dout(ref.size());
    philox_kernel<<<(count + 255) / 256, 256, 0, stream>>>(dout.p, din.p, count);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "%d random counters and keys (bits)", count);
    checker.compare("philox", shape, dout.host().data(), ref.data(), ref.size(), 0.0);
}

// hard: 0 sampled, 1 another pass's gates, 2 another pass's gates with the straight-through surrogate
void check_router_gates(int n, bool noise, double tau, int hard) {
    auto z = random_floats(rng, (size_t)4 * n, -3.0f, 3.0f), bias = random_floats(rng, 4);
    auto hard_g = random_gates(rng, (size_t)2 * n), hard_s = random_floats(rng, (size_t)2 * n, 0.0f, 1.0f);
    const uint64_t key = rng.next(), offset = rng.next();
    std::vector<float> gates((size_t)2 * n), soft((size_t)2 * n);
    sg_cpu_router_gates(gates.data(), soft.data(), z.data(), bias.data(), n, tau, noise, key, offset,
                        hard ? hard_g.data() : nullptr, hard == 2 ? hard_s.data() : nullptr);
    Dev<float> dz(z), dbias(bias), dhard_g(hard_g), dhard_s(hard_s), dgates(gates.size()), dsoft(soft.size());
    sg_cuda_router_gates(dgates.p, dsoft.p, dz.p, dbias.p, n, tau, noise, key, offset, hard ? dhard_g.p : nullptr,
                         hard == 2 ? dhard_s.p : nullptr, stream);
    KERNEL_DONE();
    // The gates are exact (a flips only where a is within a rounding of 0); soft probabilities may differ in their
    // last bit: the device's log and exp are not glibc's.
    const char *modes[] = {"", " hard gates given", " straight-through surrogate"};
    std::snprintf(shape, sizeof shape, "n=%d tau=%g %s%s gates", n, tau, noise ? "Gumbel" : "deterministic", modes[hard]);
    checker.compare("router_gates", shape, dgates.host().data(), gates.data(), gates.size(), hard == 2 ? 1e-7 : 0.0);
    std::snprintf(shape, sizeof shape, "n=%d tau=%g %s%s soft", n, tau, noise ? "Gumbel" : "deterministic", modes[hard]);
    checker.compare("router_gates", shape, dsoft.host().data(), soft.data(), soft.size(), 1e-7);
}

void check_router_gates_backward(int n, double tau) {
    auto dgates = random_floats(rng, (size_t)2 * n), soft = random_floats(rng, (size_t)2 * n, 0.0f, 1.0f);
    auto dbias = random_floats(rng, 4);
    const float gate_grad = rng.uniform(-0.1f, 0.1f);
    Dev<float> ddgates(dgates), dsoft(soft), ddbias(dbias), ddz((size_t)4 * n);
    std::vector<float> dz((size_t)4 * n);
    sg_cpu_router_gates_backward(dz.data(), dbias.data(), dgates.data(), soft.data(), n, gate_grad, tau);
    sg_cuda_router_gates_backward(ddz.p, ddbias.p, ddgates.p, dsoft.p, n, gate_grad, tau, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "n=%d tau=%g dz", n, tau);
    checker.compare("router_gates_bwd", shape, ddz.host().data(), dz.data(), dz.size(), 0.0);
    std::snprintf(shape, sizeof shape, "n=%d tau=%g dbias +=", n, tau);
    // 5e-5: the reference adds n floats one after another, the device in a tree; at n = 70000 the reference's
    // own rounding reaches 1.5e-5.
    checker.compare("router_gates_bwd", shape, ddbias.host().data(), dbias.data(), 4, 5e-5);
}

// Exact: correctly rounded double operations, none fused, on both sides. The first elements are subnormal
// (moments decaying under zero gradients end there): the device must not flush them to zero.
void check_adamw(int64_t len, double grad_scale, double keep) {
    auto p = random_floats(rng, len), grad = random_floats(rng, len);
    auto m = random_floats(rng, len, -0.1f, 0.1f), v = random_floats(rng, len, 0.0f, 0.01f);
    const float tiny = 1e-39f;  // subnormal: below FLT_MIN = 1.2e-38
    if (len > 4) {
        m[0] = tiny, grad[0] = 0.0f;
        v[1] = tiny, grad[1] = 0.0f;
        grad[2] = tiny / 10;
        p[3] = tiny, grad[3] = 0.0f;
    }
    Dev<float> dp(p), dgrad(grad), dm(m), dv(v);
    const double step_size = 1e-3 / (1 - 0.9 * 0.9), corr2 = std::sqrt(1 - 0.999 * 0.999);
    sg_cpu_adamw(p.data(), grad.data(), m.data(), v.data(), len, grad_scale, 0.9, 0.999, 1e-8, step_size, corr2, keep);
    sg_cuda_adamw(dp.p, dgrad.p, dm.p, dv.p, len, grad_scale, 0.9, 0.999, 1e-8, step_size, corr2, keep, stream);
    KERNEL_DONE();
    const char *names[] = {"param", "m", "v"};
    const Dev<float> *got[] = {&dp, &dm, &dv};
    const std::vector<float> *want[] = {&p, &m, &v};
    for (int o = 0; o < 3; o++) {
        std::snprintf(shape, sizeof shape, "len=%lld scale=%g keep=%g: %s", (long long)len, grad_scale, keep, names[o]);
        checker.compare("adamw", shape, got[o]->host().data(), want[o]->data(), len, 0.0);
    }
}

void check_sum_squares(int64_t len) {
    auto x = random_floats(rng, len, -3.0f, 3.0f);
    double want = 2.5;
    sg_cpu_sum_squares(&want, x.data(), len);
    Dev<float> dx(x);
    Dev<double> dacc(std::vector<double>{2.5});
    sg_cuda_sum_squares(dacc.p, dx.p, len, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "len=%lld, acc 2.5 +=", (long long)len);
    // the CPU adds the terms one after another in double: its rounding grows with len, up to len * 2^-53 relative
    checker.compare("sum_squares", shape, dacc.host().data(), &want, 1, std::max(1e-13, len * 0x1p-53));
}

// The same bits as the CPU mask (integer Philox, the same conversion and comparison), every element written.
void check_dropout_mask(int64_t len, double rate) {
    const uint64_t key = rng.next(), offset = rng.next();
    std::vector<float> want((size_t)len);
    sg_cpu_dropout_mask(want.data(), len, rate, key, offset);
    Dev<float> dmask((size_t)len);  // 0xFF bytes: NaN until written
    sg_cuda_dropout_mask(dmask.p, len, rate, key, offset, stream);
    KERNEL_DONE();
    std::snprintf(shape, sizeof shape, "len=%lld rate=%g", (long long)len, rate);
    checker.compare("dropout_mask", shape, dmask.host().data(), want.data(), want.size(), 0.0);
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
    std::printf("device 0: %s, compute capability %d.%d, %d SMs\n", prop.name, prop.major, prop.minor,
                prop.multiProcessorCount);
    CUDA_OK(cudaStreamCreate(&stream));

    // Four variants: float4 or scalar, row cached in registers (<= 2048 units) or read twice.
    for (int d : {1, 13, 1000, 4099, 4096, 8192, 12288}) check_rmsnorm(d >= 4096 ? 33 : 7, d, 1e-5f, 0, false);
    check_rmsnorm(4096, 4096, 1e-5f, 0, false);
    check_rmsnorm(5, 256, 1e-6f, 1, false);
    check_rmsnorm(33, 256, 1e-6f, 0, true);
    check_rmsnorm(33, 257, 1e-6f, 0, true);

    for (int rotate_half : {0, 1}) {
        check_rope(1, 1, 6, 10000.0f, rotate_half, 3);
        check_rope(5, 3, 8, 10000.0f, rotate_half, 12000);
        check_rope(17, 8, 64, 10000.0f, rotate_half, 9999);
        check_rope(513, 32, 128, 500000.0f, rotate_half, 16383);
    }

    check_attention("decode", {299}, 300, 4, 4, 64);
    check_attention("decode", {8191}, 8192, 32, 8, 128);
    check_attention("prefill", contiguous_positions(37, 0), 37, 4, 2, 8);
    check_attention("chunked prefill", contiguous_positions(70, 60), 130, 3, 3, 64);
    check_attention("routed prefill", kept_positions(rng, 200, 0.6), 200, 8, 2, 128);
    check_attention("routed prefill", kept_positions(rng, 1100, 0.05), 1100, 4, 1, 128);
    check_attention("unsorted", {5, 0, 49, 17, 17, 3, 30, 48, 1}, 50, 8, 2, 6);
    check_attention("prefill", contiguous_positions(33, 0), 33, 1, 1, 1);
    check_attention("prefill", contiguous_positions(300, 0), 300, 8, 8, 128);
    // Grids of at least one block per multiprocessor run unsplit; smaller ones split the keys.
    check_attention("prefill llama3", contiguous_positions(257, 0), 257, 32, 8, 128);
    check_attention("prefill unsplit", contiguous_positions(1024, 0), 1024, 16, 4, 64);
    check_attention("routed prefill", kept_positions(rng, 1000, 0.6), 1000, 8, 2, 64);
    check_attention("long tail", contiguous_positions(16, 8284), 8300, 4, 1, 128);
    check_attention("head_dim 160", contiguous_positions(40, 10), 50, 4, 2, 160);
    check_attention("head_dim 96", kept_positions(rng, 150, 0.5), 150, 6, 3, 96);
    // Per-query caches: decode steps of a batch (slots of 520 rows, out of order, one short), every head size
    // class of the per-query kernel (32, 64, 128, 256 columns per warp) and the wide fallback.
    for (int hd : {6, 64, 128, 200, 300})
        check_attention("batched decode", {519, 0, 300, 7}, 2080, 8, 2, hd, {1040, 0, 520, 1560});
    check_attention("batched decode llama2", {511, 511, 100, 511, 4, 511, 511, 511}, 8 * 512, 32, 32, 128,
                    {0, 512, 1024, 1536, 2048, 2560, 3072, 3584});
    check_attention("batched decode llama3", {4095, 2000}, 8192, 32, 8, 128, {4096, 0});
    check_attention("batched prompts", {0, 1, 2, 5, 6}, 100, 4, 4, 64, {40, 40, 40, 0, 0});
    {
        // 256 sequences x 32 heads: rows enough that the per-query kernel runs unsplit (>= 48 per multiprocessor)
        std::vector<int32_t> pos(256), start(256);
        for (int i = 0; i < 256; i++) {
            pos[i] = rng.below(64);
            start[i] = 64 * ((i * 37) % 256);  // slots out of order
        }
        check_attention("batched decode unsplit", pos, 256 * 64, 32, 8, 64, start);
    }

    for (int64_t len : {1, 7, 1000, (1 << 20) + 3}) check_swiglu(len, false);
    check_swiglu(4097, true);

    check_softmax(1, 1, 1.0f);
    check_softmax(3, 7, 1.0f);
    check_softmax(65, 129, 30.0f);
    check_softmax(4, 32003, 10.0f);
    check_softmax(2, 128256, 10.0f);

    check_embedding(1, 1, 1);
    check_embedding(50, 13, 7);
    check_embedding(300, 40, 64);
    check_embedding(1000, 517, 4096);

    for (int d : {1, 5, 4096, 4098}) {
        check_gather_rows(1000, 613, d);
        check_scatter_add_rows(1000, 613, d);
    }
    check_gather_rows(1, 1, 1);
    check_scatter_add_rows(1, 1, 1);
    check_scatter_rows(1, 1, 1);
    for (int d : {5, 4096}) check_scatter_rows(1000, 613, d);

    for (int64_t len : {1, 9, 70001, 1 << 22}) check_add(len);

    check_cross_entropy(1, 2, 3.0f);
    check_cross_entropy(6, 17, 15.0f);
    check_cross_entropy(40, 32000, 10.0f);
    check_cross_entropy(3, 128256, 10.0f);

    for (int n : {0, 1, 13, 1023, 1024, 1025, 5000, 70000})
        for (double keep : {0.0, 0.6, 0.75, 1.0}) check_compact(n, keep);

    check_row_dot(1, 1);
    check_row_dot(13, 7);
    check_row_dot(4096, 4099);
    check_scale_rows(1, 1);
    check_scale_rows(13, 7);
    check_scale_rows(4096, 4099);

    for (int d : {2, 13, 1000, 4099, 4096}) check_rmsnorm_backward(d >= 4096 ? 33 : 7, d, 1e-5f, true);
    check_rmsnorm_backward(4096, 4096, 1e-5f, true);  // 256 blocks adding into one dw
    check_rmsnorm_backward(33, 257, 1e-6f, false);

    for (int rotate_half : {0, 1}) {
        check_rope_backward(1, 1, 6, 10000.0f, rotate_half, 3);
        check_rope_backward(17, 8, 64, 10000.0f, rotate_half, 9999);
        check_rope_backward(513, 32, 128, 500000.0f, rotate_half, 16383);
    }

    check_attention_backward("decode", {299}, 300, 4, 4, 64);
    check_attention_backward("prefill", contiguous_positions(37, 0), 37, 4, 2, 8);
    check_attention_backward("chunked prefill", contiguous_positions(70, 60), 130, 3, 3, 64);
    check_attention_backward("routed prefill", kept_positions(rng, 200, 0.6), 200, 8, 2, 128);
    check_attention_backward("unsorted", {5, 0, 49, 17, 17, 3, 30, 48, 1}, 60, 8, 2, 6);
    check_attention_backward("prefill", contiguous_positions(33, 0), 33, 1, 1, 1);
    check_attention_backward("prefill llama3", contiguous_positions(257, 0), 257, 32, 8, 128);
    check_attention_backward("head_dim 160", contiguous_positions(40, 10), 50, 4, 2, 160);

    for (int64_t len : {1, 7, 1000, (1 << 20) + 3}) check_swiglu_backward(len, false);
    check_swiglu_backward(4097, true);

    check_cross_entropy_backward(1, 2, 3.0f, false, false);
    check_cross_entropy_backward(6, 17, 15.0f, true, false);
    check_cross_entropy_backward(40, 32000, 10.0f, true, false);
    check_cross_entropy_backward(3, 128256, 10.0f, false, true);

    // {n, k, m, r}: decode (outputs split over blocks), partial row blocks, the largest rank, LLaMA-7B-like shapes
    for (auto s : std::vector<std::array<int, 4>>{{1, 1, 1, 1}, {1, 4096, 4096, 16}, {7, 13, 5, 3}, {33, 257, 129, 16},
                                                   {300, 64, 172, 16}, {20, 48, 40, 256}, {517, 1001, 300, 7},
                                                   {1024, 4096, 11008, 16}}) {
        check_lora_forward(s[0], s[1], s[2], s[3]);
        check_lora_backward(s[0], s[1], s[2], s[3]);
    }

    for (int64_t len : {0, 1, 7, 24, 1000, 65537, (1 << 22) + 5})
        for (int offset : {0, 1, 3}) check_f32_to_bf16(len, offset);
    check_attention_probs(1, 1, 1);
    check_attention_probs(37, 3, 300);
    check_attention_probs(64, 8, 4099);

    check_philox(100000);
    for (bool noise : {false, true})
        for (int hard : {0, 1, 2}) check_router_gates(noise ? 333 : 17, noise, hard ? 1.0 : 3.7, hard);
    check_router_gates(70000, true, 5.0, 0);
    for (int n : {1, 13, 1000, 70000}) check_router_gates_backward(n, n == 13 ? 1.0 : 4.2);
    for (int64_t len : {1, 1003, (1 << 20) + 3}) check_adamw(len, len == 1003 ? 0.37 : 1.0, len == 1 ? 1.0 : 0.999);
    for (int64_t len : {1, 1003, (1 << 22) + 5}) check_sum_squares(len);
    for (int64_t len : {1, 1003, (1 << 20) + 7}) check_dropout_mask(len, len == 1 ? 0.5 : 0.1);

    CUDA_OK(cudaStreamDestroy(stream));
    return checker.finish("cuda kernels");
}
