// Every sg_cpu_* kernel against a plain double-precision reference written here, on random inputs of
// awkward shapes. Outputs are poisoned with NaN first, so an element the kernel forgot fails the check.
#include "check.h"
#include "skipgpt.h"
#include "skipgpt_training.h"

#include <array>
#include <cstring>
#include <string>

namespace {

Checker checker;
Rng rng(20240611);
char shape[160];

// ---------------------------------------------------------------- references (double accumulation)

// out[n, d] = x / sqrt(mean(x^2) + eps) * w
std::vector<double> ref_rmsnorm(const std::vector<float> &x, const std::vector<float> &w, int n, int d, float eps) {
    std::vector<double> out((size_t)n * d);
    for (int i = 0; i < n; i++) {
        double ss = 0;
        for (int j = 0; j < d; j++) ss += (double)x[(size_t)i * d + j] * x[(size_t)i * d + j];
        double inv = 1.0 / std::sqrt(ss / d + eps);
        for (int j = 0; j < d; j++) out[(size_t)i * d + j] = x[(size_t)i * d + j] * inv * w[j];
    }
    return out;
}

// x[n, H*hd] rotated per head; pair j at angle pos * theta^(-2j/hd)
std::vector<double> ref_rope(const std::vector<float> &x, const std::vector<int32_t> &pos, int n, int n_heads,
                             int hd, float theta, int rotate_half) {
    std::vector<double> out(x.begin(), x.end());
    for (int i = 0; i < n; i++)
        for (int h = 0; h < n_heads; h++)
            for (int j = 0; j < hd / 2; j++) {
                double angle = pos[i] * std::pow((double)theta, -2.0 * j / hd);
                size_t base = (size_t)i * n_heads * hd + (size_t)h * hd;
                size_t a = base + (rotate_half ? j : 2 * j), b = base + (rotate_half ? j + hd / 2 : 2 * j + 1);
                double x0 = x[a], x1 = x[b];
                out[a] = x0 * std::cos(angle) - x1 * std::sin(angle);
                out[b] = x0 * std::sin(angle) + x1 * std::cos(angle);
            }
    return out;
}

// out[n, H*hd] = softmax(q k^T / sqrt(hd)) v over cache rows start[i] + 0..pos[i] (start: kv_start, or 0 when
// it is empty), kv head h / (H / Hkv)
std::vector<double> ref_attention(const std::vector<float> &q, const std::vector<float> &k,
                                  const std::vector<float> &v, const std::vector<int32_t> &pos, int n, int n_heads,
                                  int n_kv_heads, int hd, const std::vector<int32_t> &kv_start = {}) {
    std::vector<double> out((size_t)n * n_heads * hd, 0.0);
    for (int i = 0; i < n; i++)
        for (int h = 0; h < n_heads; h++) {
            int kvh = h / (n_heads / n_kv_heads), len = pos[i] + 1;
            size_t first = kv_start.empty() ? 0 : kv_start[i];
            std::vector<double> s(len);
            double mx = -INFINITY;
            for (int t = 0; t < len; t++) {
                double dot = 0;
                for (int j = 0; j < hd; j++)
                    dot += (double)q[((size_t)i * n_heads + h) * hd + j] * k[((first + t) * n_kv_heads + kvh) * hd + j];
                s[t] = dot / std::sqrt((double)hd);
                mx = std::max(mx, s[t]);
            }
            double sum = 0;
            for (int t = 0; t < len; t++) sum += (s[t] = std::exp(s[t] - mx));
            for (int t = 0; t < len; t++)
                for (int j = 0; j < hd; j++)
                    out[((size_t)i * n_heads + h) * hd + j] += s[t] / sum * v[((first + t) * n_kv_heads + kvh) * hd + j];
        }
    return out;
}

// Backward of ref_attention: dq written, dk and dv added into (dk, dv hold their starting values on entry).
void ref_attention_backward(std::vector<double> &dq, std::vector<double> &dk, std::vector<double> &dv,
                            const std::vector<float> &dout, const std::vector<float> &q, const std::vector<float> &k,
                            const std::vector<float> &v, const std::vector<int32_t> &pos, int n, int n_heads,
                            int n_kv_heads, int hd) {
    dq.assign((size_t)n * n_heads * hd, 0.0);
    const double scale = 1.0 / std::sqrt((double)hd);
    for (int i = 0; i < n; i++)
        for (int h = 0; h < n_heads; h++) {
            const int kvh = h / (n_heads / n_kv_heads), len = pos[i] + 1;
            const size_t qrow = ((size_t)i * n_heads + h) * hd;
            std::vector<double> p(len), dp(len, 0.0);
            double mx = -INFINITY, sum = 0, dsum = 0;
            for (int t = 0; t < len; t++) {
                double dot = 0;
                for (int j = 0; j < hd; j++) dot += (double)q[qrow + j] * k[((size_t)t * n_kv_heads + kvh) * hd + j];
                p[t] = dot * scale;
                mx = std::max(mx, p[t]);
            }
            for (int t = 0; t < len; t++) sum += (p[t] = std::exp(p[t] - mx));
            for (int t = 0; t < len; t++) {
                p[t] /= sum;
                for (int j = 0; j < hd; j++) dp[t] += (double)dout[qrow + j] * v[((size_t)t * n_kv_heads + kvh) * hd + j];
                dsum += p[t] * dp[t];
            }
            for (int t = 0; t < len; t++) {
                const double ds = p[t] * (dp[t] - dsum) * scale;
                for (int j = 0; j < hd; j++) {
                    const size_t kv = ((size_t)t * n_kv_heads + kvh) * hd + j;
                    dq[qrow + j] += ds * k[kv];
                    dk[kv] += ds * q[qrow + j];
                    dv[kv] += p[t] * dout[qrow + j];
                }
            }
        }
}

// ---------------------------------------------------------------- checks

void check_rmsnorm(int n, int d, float eps, bool in_place) {
    auto x = random_floats(rng, (size_t)n * d, -2.0f, 2.0f), w = random_floats(rng, d, 0.5f, 1.5f);
    auto ref = ref_rmsnorm(x, w, n, d, eps);
    auto out = in_place ? x : nan_filled(x.size());
    sg_cpu_rmsnorm(out.data(), in_place ? out.data() : x.data(), w.data(), n, d, eps);
    std::snprintf(shape, sizeof shape, "n=%d d=%d eps=%g%s", n, d, eps, in_place ? " in place" : "");
    checker.compare("rmsnorm", shape, out.data(), ref.data(), ref.size(), 1e-5);
}

void check_rope(int n, int n_heads, int hd, float theta, int rotate_half, int max_pos) {
    auto x = random_floats(rng, (size_t)n * n_heads * hd);
    std::vector<int32_t> pos(n);
    for (auto &p : pos) p = rng.below(max_pos + 1);
    pos[0] = max_pos;
    auto ref = ref_rope(x, pos, n, n_heads, hd, theta, rotate_half);
    sg_cpu_rope(x.data(), pos.data(), n, n_heads, hd, theta, rotate_half);
    std::snprintf(shape, sizeof shape, "n=%d H=%d hd=%d theta=%g %s pos<=%d", n, n_heads, hd, theta,
                  rotate_half ? "rotate-half" : "adjacent", max_pos);
    checker.compare("rope", shape, x.data(), ref.data(), ref.size(), 1e-5);
}

// kv_start empty: one cache for every query; else query i's cache begins at row kv_start[i] of the t rows.
void check_attention(const char *what, const std::vector<int32_t> &pos, int t, int n_heads, int n_kv_heads, int hd,
                     const std::vector<int32_t> &kv_start = {}) {
    int n = (int)pos.size();
    auto q = random_floats(rng, (size_t)n * n_heads * hd, -2.0f, 2.0f);
    auto k = random_floats(rng, (size_t)t * n_kv_heads * hd, -2.0f, 2.0f);
    auto v = random_floats(rng, (size_t)t * n_kv_heads * hd);
    auto ref = ref_attention(q, k, v, pos, n, n_heads, n_kv_heads, hd, kv_start);
    auto out = nan_filled(ref.size());
    sg_cpu_attention(out.data(), q.data(), k.data(), v.data(), pos.data(), kv_start.empty() ? nullptr : kv_start.data(),
                     n, n_heads, n_kv_heads, hd);
    std::snprintf(shape, sizeof shape, "%s n=%d t=%d H=%d Hkv=%d hd=%d", what, n, t, n_heads, n_kv_heads, hd);
    checker.compare("attention", shape, out.data(), ref.data(), ref.size(), 1e-5);
}

void check_swiglu(int64_t len, bool in_place) {
    auto gate = random_floats(rng, len, -12.0f, 12.0f), up = random_floats(rng, len, -2.0f, 2.0f);
    std::vector<double> ref(len);
    for (int64_t i = 0; i < len; i++) ref[i] = gate[i] / (1.0 + std::exp(-(double)gate[i])) * up[i];
    auto out = in_place ? gate : nan_filled(len);
    sg_cpu_swiglu(out.data(), in_place ? out.data() : gate.data(), up.data(), len);
    std::snprintf(shape, sizeof shape, "len=%lld%s", (long long)len, in_place ? " in place" : "");
    checker.compare("swiglu", shape, out.data(), ref.data(), ref.size(), 1e-5);
}

void check_softmax(int n, int d, float range) {
    auto x = random_floats(rng, (size_t)n * d, -range, range);
    std::vector<double> ref((size_t)n * d);
    for (int i = 0; i < n; i++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < d; j++) mx = std::max(mx, (double)x[(size_t)i * d + j]);
        for (int j = 0; j < d; j++) sum += std::exp(x[(size_t)i * d + j] - mx);
        for (int j = 0; j < d; j++) ref[(size_t)i * d + j] = std::exp(x[(size_t)i * d + j] - mx) / sum;
    }
    sg_cpu_softmax(x.data(), n, d);
    std::snprintf(shape, sizeof shape, "n=%d d=%d logits in +-%g", n, d, range);
    checker.compare("softmax", shape, x.data(), ref.data(), ref.size(), 1e-5);
}

void check_embedding(int vocab, int n, int d) {
    auto table = random_floats(rng, (size_t)vocab * d);
    std::vector<int32_t> ids(n);
    for (auto &id : ids) id = rng.below(vocab);
    ids[0] = vocab - 1;
    std::vector<float> ref((size_t)n * d);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) ref[(size_t)i * d + j] = table[(size_t)ids[i] * d + j];
    auto out = nan_filled(ref.size());
    sg_cpu_embedding(out.data(), table.data(), ids.data(), n, d);
    std::snprintf(shape, sizeof shape, "vocab=%d n=%d d=%d", vocab, n, d);
    checker.compare("embedding", shape, out.data(), ref.data(), ref.size(), 0.0);
}

void check_gather_rows(int rows, int count, int d) {
    auto src = random_floats(rng, (size_t)rows * d);
    auto idx = random_subset(rng, rows, count);
    std::vector<float> ref((size_t)count * d);
    for (int i = 0; i < count; i++)
        for (int j = 0; j < d; j++) ref[(size_t)i * d + j] = src[(size_t)idx[i] * d + j];
    auto out = nan_filled(ref.size());
    sg_cpu_gather_rows(out.data(), src.data(), idx.data(), count, d);
    std::snprintf(shape, sizeof shape, "rows=%d count=%d d=%d permuted", rows, count, d);
    checker.compare("gather_rows", shape, out.data(), ref.data(), ref.size(), 0.0);
}

void check_scatter_add_rows(int rows, int count, int d) {
    auto dst = random_floats(rng, (size_t)rows * d), src = random_floats(rng, (size_t)count * d);
    auto idx = random_subset(rng, rows, count);
    std::vector<double> ref(dst.begin(), dst.end());
    for (int i = 0; i < count; i++)
        for (int j = 0; j < d; j++) ref[(size_t)idx[i] * d + j] += src[(size_t)i * d + j];
    sg_cpu_scatter_add_rows(dst.data(), src.data(), idx.data(), count, d);
    std::snprintf(shape, sizeof shape, "rows=%d count=%d d=%d permuted", rows, count, d);
    checker.compare("scatter_add_rows", shape, dst.data(), ref.data(), ref.size(), 1e-6);
}

void check_scatter_rows(int rows, int count, int d) {
    auto dst = random_floats(rng, (size_t)rows * d), src = random_floats(rng, (size_t)count * d);
    auto idx = random_subset(rng, rows, count);
    std::vector<float> ref = dst;
    for (int i = 0; i < count; i++)
        for (int j = 0; j < d; j++) ref[(size_t)idx[i] * d + j] = src[(size_t)i * d + j];
    sg_cpu_scatter_rows(dst.data(), src.data(), idx.data(), count, d);
    std::snprintf(shape, sizeof shape, "rows=%d count=%d d=%d permuted", rows, count, d);
    checker.compare("scatter_rows", shape, dst.data(), ref.data(), ref.size(), 0.0);
}

void check_add(int64_t len) {
    auto dst = random_floats(rng, len), src = random_floats(rng, len);
    std::vector<double> ref(len);
    for (int64_t i = 0; i < len; i++) ref[i] = (double)dst[i] + src[i];
    sg_cpu_add(dst.data(), src.data(), len);
    std::snprintf(shape, sizeof shape, "len=%lld", (long long)len);
    checker.compare("add", shape, dst.data(), ref.data(), ref.size(), 1e-6);
}

void check_cross_entropy(int n, int vocab, float range) {
    auto logits = random_floats(rng, (size_t)n * vocab, -range, range);
    std::vector<int32_t> targets(n);
    for (auto &t : targets) t = rng.below(vocab);
    targets[0] = vocab - 1;
    std::vector<double> ref(n);
    for (int i = 0; i < n; i++) {
        const float *li = logits.data() + (size_t)i * vocab;
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < vocab; j++) mx = std::max(mx, (double)li[j]);
        for (int j = 0; j < vocab; j++) sum += std::exp(li[j] - mx);
        ref[i] = std::log(sum) + mx - li[targets[i]];
    }
    auto loss = nan_filled(n);
    sg_cpu_cross_entropy(loss.data(), logits.data(), targets.data(), n, vocab);
    std::snprintf(shape, sizeof shape, "n=%d vocab=%d logits in +-%g", n, vocab, range);
    checker.compare("cross_entropy", shape, loss.data(), ref.data(), ref.size(), 1e-5);
}

void check_compact(int n, double keep_prob) {
    std::vector<uint8_t> keep(n);
    for (auto &k : keep) k = rng.uniform() < keep_prob ? (uint8_t)(1 + rng.below(255)) : 0;
    std::vector<int32_t> ref;
    for (int i = 0; i < n; i++)
        if (keep[i]) ref.push_back(i);
    std::vector<int32_t> idx(n + 1, -1);  // one spare entry: must stay untouched
    int32_t count = -1;
    sg_cpu_compact(idx.data(), &count, keep.data(), n);
    std::snprintf(shape, sizeof shape, "n=%d keep=%g -> count %d", n, keep_prob, count);
    int32_t ref_count = (int32_t)ref.size();
    ref.resize(n + 1, -1);
    if (count != ref_count) {
        std::printf("compact: count %d, want %d\n", count, ref_count);
        checker.failures++;
    }
    checker.compare("compact", shape, idx.data(), ref.data(), ref.size(), 0.0);
}

void check_row_dot(int n, int d) {
    auto a = random_floats(rng, (size_t)n * d), b = random_floats(rng, (size_t)n * d);
    std::vector<double> ref(n, 0.0);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) ref[i] += (double)a[(size_t)i * d + j] * b[(size_t)i * d + j];
    auto out = nan_filled(n);
    sg_cpu_row_dot(out.data(), a.data(), b.data(), n, d);
    std::snprintf(shape, sizeof shape, "n=%d d=%d", n, d);
    checker.compare("row_dot", shape, out.data(), ref.data(), ref.size(), 1e-5);
}

void check_scale_rows(int n, int d) {
    auto x = random_floats(rng, (size_t)n * d), s = random_floats(rng, n, -2.0f, 2.0f);
    s[0] = 0.0f;  // a skipped row
    std::vector<double> ref((size_t)n * d);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) ref[(size_t)i * d + j] = (double)x[(size_t)i * d + j] * s[i];
    sg_cpu_scale_rows(x.data(), s.data(), n, d);
    std::snprintf(shape, sizeof shape, "n=%d d=%d", n, d);
    checker.compare("scale_rows", shape, x.data(), ref.data(), ref.size(), 1e-6);
}

void check_rmsnorm_backward(int n, int d, float eps, bool with_dw) {
    auto x = random_floats(rng, (size_t)n * d, -2.0f, 2.0f), w = random_floats(rng, d, 0.5f, 1.5f);
    auto dy = random_floats(rng, (size_t)n * d), dw = random_floats(rng, d);
    std::vector<double> ref_dx((size_t)n * d), ref_dw(dw.begin(), dw.end());
    for (int i = 0; i < n; i++) {
        const float *xi = x.data() + (size_t)i * d, *dyi = dy.data() + (size_t)i * d;
        double ss = 0, dot = 0;
        for (int j = 0; j < d; j++) {
            ss += (double)xi[j] * xi[j];
            dot += (double)dyi[j] * w[j] * xi[j];
        }
        const double r = 1.0 / std::sqrt(ss / d + eps);
        for (int j = 0; j < d; j++) {
            ref_dx[(size_t)i * d + j] = r * w[j] * dyi[j] - xi[j] * r * r * r / d * dot;
            ref_dw[j] += (double)dyi[j] * xi[j] * r;
        }
    }
    auto dx = nan_filled(ref_dx.size());
    sg_cpu_rmsnorm_backward(dx.data(), with_dw ? dw.data() : nullptr, dy.data(), x.data(), w.data(), n, d, eps);
    std::snprintf(shape, sizeof shape, "n=%d d=%d eps=%g dx", n, d, eps);
    checker.compare("rmsnorm_backward", shape, dx.data(), ref_dx.data(), ref_dx.size(), 1e-5);
    if (with_dw) {
        std::snprintf(shape, sizeof shape, "n=%d d=%d eps=%g dw +=", n, d, eps);
        checker.compare("rmsnorm_backward", shape, dw.data(), ref_dw.data(), ref_dw.size(), 1e-5);
    }
}

// The backward turns each pair back: the reference is the forward rotation at negated positions.
void check_rope_backward(int n, int n_heads, int hd, float theta, int rotate_half, int max_pos) {
    auto dx = random_floats(rng, (size_t)n * n_heads * hd);
    std::vector<int32_t> pos(n), neg(n);
    for (auto &p : pos) p = rng.below(max_pos + 1);
    pos[0] = max_pos;
    for (int i = 0; i < n; i++) neg[i] = -pos[i];
    auto ref = ref_rope(dx, neg, n, n_heads, hd, theta, rotate_half);
    sg_cpu_rope_backward(dx.data(), pos.data(), n, n_heads, hd, theta, rotate_half);
    std::snprintf(shape, sizeof shape, "n=%d H=%d hd=%d theta=%g %s pos<=%d", n, n_heads, hd, theta,
                  rotate_half ? "rotate-half" : "adjacent", max_pos);
    checker.compare("rope_backward", shape, dx.data(), ref.data(), ref.size(), 1e-5);
}

void check_attention_backward(const char *what, const std::vector<int32_t> &pos, int t, int n_heads, int n_kv_heads,
                              int hd) {
    int n = (int)pos.size();
    auto q = random_floats(rng, (size_t)n * n_heads * hd, -2.0f, 2.0f);
    auto k = random_floats(rng, (size_t)t * n_kv_heads * hd, -2.0f, 2.0f);
    auto v = random_floats(rng, (size_t)t * n_kv_heads * hd);
    auto dout = random_floats(rng, q.size());
    auto dk = random_floats(rng, k.size()), dv = random_floats(rng, v.size());  // accumulated into
    std::vector<double> ref_dq, ref_dk(dk.begin(), dk.end()), ref_dv(dv.begin(), dv.end());
    ref_attention_backward(ref_dq, ref_dk, ref_dv, dout, q, k, v, pos, n, n_heads, n_kv_heads, hd);
    auto dq = nan_filled(q.size());
    sg_cpu_attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(), pos.data(),
                              n, n_heads, n_kv_heads, hd);
    const char *names[] = {"dq", "dk +=", "dv +="};
    const std::vector<float> *got[] = {&dq, &dk, &dv};
    const std::vector<double> *want[] = {&ref_dq, &ref_dk, &ref_dv};
    for (int o = 0; o < 3; o++) {
        std::snprintf(shape, sizeof shape, "%s n=%d t=%d H=%d Hkv=%d hd=%d %s", what, n, t, n_heads, n_kv_heads, hd,
                      names[o]);
        checker.compare("attention_backward", shape, got[o]->data(), want[o]->data(), want[o]->size(), 1e-5);
    }
}

void check_swiglu_backward(int64_t len, bool in_place) {
    auto gate = random_floats(rng, len, -12.0f, 12.0f), up = random_floats(rng, len, -2.0f, 2.0f);
    auto dout = random_floats(rng, len);
    if (len > 1) gate[len - 1] = -100.0f;  // e^-gate overflows: sigma = 0, gradients ~1e-43 next to O(1) ones
    std::vector<double> ref_dgate(len), ref_dup(len);
    for (int64_t i = 0; i < len; i++) {
        const double g = gate[i], sig = 1.0 / (1.0 + std::exp(-g));
        ref_dgate[i] = dout[i] * up[i] * sig * (1.0 + g * (1.0 - sig));
        ref_dup[i] = dout[i] * g * sig;
    }
    // in place: dgate over gate, dup over up
    auto dgate = in_place ? gate : nan_filled(len), dup = in_place ? up : nan_filled(len);
    sg_cpu_swiglu_backward(dgate.data(), dup.data(), dout.data(), in_place ? dgate.data() : gate.data(),
                           in_place ? dup.data() : up.data(), len);
    std::snprintf(shape, sizeof shape, "len=%lld%s dgate", (long long)len, in_place ? " in place" : "");
    checker.compare("swiglu_backward", shape, dgate.data(), ref_dgate.data(), len, 1e-5);
    std::snprintf(shape, sizeof shape, "len=%lld%s dup", (long long)len, in_place ? " in place" : "");
    checker.compare("swiglu_backward", shape, dup.data(), ref_dup.data(), len, 1e-5);
}

void check_cross_entropy_backward(int n, int vocab, float range, bool per_row, bool in_place) {
    auto logits = random_floats(rng, (size_t)n * vocab, -range, range);
    std::vector<int32_t> targets(n);
    for (auto &t : targets) t = rng.below(vocab);
    targets[0] = vocab - 1;
    auto dloss = random_floats(rng, n, 0.0f, 2.0f);
    dloss[0] = 0.0f;  // a masked-out row
    const float scale = 1.0f / n;
    std::vector<double> ref((size_t)n * vocab);
    for (int i = 0; i < n; i++) {
        const float *li = logits.data() + (size_t)i * vocab;
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < vocab; j++) mx = std::max(mx, (double)li[j]);
        for (int j = 0; j < vocab; j++) sum += std::exp(li[j] - mx);
        const double c = (double)scale * (per_row ? dloss[i] : 1.0);
        for (int j = 0; j < vocab; j++)
            ref[(size_t)i * vocab + j] = c * (std::exp(li[j] - mx) / sum - (j == targets[i] ? 1.0 : 0.0));
    }
    auto dlogits = in_place ? logits : nan_filled(logits.size());
    sg_cpu_cross_entropy_backward(dlogits.data(), in_place ? dlogits.data() : logits.data(), targets.data(),
                                  per_row ? dloss.data() : nullptr, scale, n, vocab);
    std::snprintf(shape, sizeof shape, "n=%d vocab=%d logits in +-%g %s%s", n, vocab, range,
                  per_row ? "dloss[i]/n" : "1/n", in_place ? " in place" : "");
    checker.compare("cross_entropy_bwd", shape, dlogits.data(), ref.data(), ref.size(), 1e-5);
}

// out[n, m] += scale * (x A^T) B^T, computed unfused in double: u = x A^T first, then u B^T.
std::vector<double> ref_lora_forward(const std::vector<float> &out, const std::vector<float> &x,
                                     const std::vector<float> &a, const std::vector<float> &b, int n, int k, int m,
                                     int r, float scale) {
    std::vector<double> ref(out.begin(), out.end()), u((size_t)n * r, 0.0);
    for (int i = 0; i < n; i++)
        for (int t = 0; t < r; t++)
            for (int p = 0; p < k; p++) u[(size_t)i * r + t] += (double)x[(size_t)i * k + p] * a[(size_t)t * k + p];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) {
            double s = 0;
            for (int t = 0; t < r; t++) s += u[(size_t)i * r + t] * b[(size_t)j * r + t];
            ref[(size_t)i * m + j] += scale * s;
        }
    return ref;
}

void check_lora_forward(int n, int k, int m, int r) {
    auto x = random_floats(rng, (size_t)n * k), a = random_floats(rng, (size_t)r * k);
    auto b = random_floats(rng, (size_t)m * r), out = random_floats(rng, (size_t)n * m);  // added into
    const float scale = 32.0f / r;
    auto ref = ref_lora_forward(out, x, a, b, n, k, m, r, scale);
    sg_cpu_lora_forward(out.data(), x.data(), a.data(), b.data(), n, k, m, r, scale);
    std::snprintf(shape, sizeof shape, "n=%d k=%d m=%d r=%d out +=", n, k, m, r);
    checker.compare("lora_forward", shape, out.data(), ref.data(), ref.size(), 1e-5);
}

// dx += g A, da += g^T x, db += scale dy^T u with u = x A^T, g = scale dy B; all three start from random values.
void check_lora_backward(int n, int k, int m, int r) {
    auto x = random_floats(rng, (size_t)n * k), a = random_floats(rng, (size_t)r * k);
    auto b = random_floats(rng, (size_t)m * r), dy = random_floats(rng, (size_t)n * m);
    auto dx = random_floats(rng, x.size()), da = random_floats(rng, a.size()), db = random_floats(rng, b.size());
    const float scale = 32.0f / r;
    std::vector<double> ref_dx(dx.begin(), dx.end()), ref_da(da.begin(), da.end()), ref_db(db.begin(), db.end());
    std::vector<double> u((size_t)n * r, 0.0), g((size_t)n * r, 0.0);
    for (int i = 0; i < n; i++)
        for (int t = 0; t < r; t++) {
            for (int p = 0; p < k; p++) u[(size_t)i * r + t] += (double)x[(size_t)i * k + p] * a[(size_t)t * k + p];
            for (int j = 0; j < m; j++) g[(size_t)i * r + t] += (double)scale * dy[(size_t)i * m + j] * b[(size_t)j * r + t];
        }
    for (int i = 0; i < n; i++)
        for (int t = 0; t < r; t++) {
            for (int p = 0; p < k; p++) {
                ref_dx[(size_t)i * k + p] += g[(size_t)i * r + t] * a[(size_t)t * k + p];
                ref_da[(size_t)t * k + p] += g[(size_t)i * r + t] * x[(size_t)i * k + p];
            }
            for (int j = 0; j < m; j++) ref_db[(size_t)j * r + t] += (double)scale * dy[(size_t)i * m + j] * u[(size_t)i * r + t];
        }
    sg_cpu_lora_backward(dx.data(), da.data(), db.data(), dy.data(), x.data(), a.data(), b.data(), n, k, m, r, scale);
    const char *names[] = {"dx +=", "da +=", "db +="};
    const std::vector<float> *got[] = {&dx, &da, &db};
    const std::vector<double> *want[] = {&ref_dx, &ref_da, &ref_db};
    for (int o = 0; o < 3; o++) {
        std::snprintf(shape, sizeof shape, "n=%d k=%d m=%d r=%d %s", n, k, m, r, names[o]);
        checker.compare("lora_backward", shape, got[o]->data(), want[o]->data(), want[o]->size(), 1e-5);
    }
}

// ---------------------------------------------------------------- training kernels

// Philox4x32-10 as the paper describes it, written apart from the kernels' (skipgpt_training.h).
void ref_philox(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]) {
    const uint32_t mul[2] = {0xD2511F53u, 0xCD9E8D57u}, weyl[2] = {0x9E3779B9u, 0xBB67AE85u};
    uint32_t x[4] = {ctr[0], ctr[1], ctr[2], ctr[3]}, k[2] = {key[0], key[1]};
    for (int round = 0; round < 10; round++) {
        const uint64_t p0 = (uint64_t)mul[0] * x[0], p1 = (uint64_t)mul[1] * x[2];
        const uint32_t y[4] = {(uint32_t)(p1 >> 32) ^ x[1] ^ k[0], (uint32_t)p1, (uint32_t)(p0 >> 32) ^ x[3] ^ k[1],
                               (uint32_t)p0};
        std::memcpy(x, y, sizeof x);
        k[0] += weyl[0];
        k[1] += weyl[1];
    }
    std::memcpy(out, x, sizeof x);
}

// The known-answer vectors of Random123 (tests/kat_vectors, "philox4x32 10"): counter, key, output. Both the
// kernels' generator and the reference must give them, and agree on random counters and keys.
void check_philox() {
    const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {~0u, ~0u, ~0u, ~0u, ~0u, ~0u, 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
         0x24126ea1}};
    std::vector<double> got, want;
    for (const auto &v : kat) {
        uint32_t ref[4];
        ref_philox(ref, v, v + 4);
        const sg::Philox4 r = sg::philox4x32_10(sg::Philox4{{v[0], v[1], v[2], v[3]}}, v[4], v[5]);
        for (int w = 0; w < 4; w++) {
            want.push_back(v[6 + w]);
            want.push_back(v[6 + w]);
            got.push_back(r.v[w]);
            got.push_back(ref[w]);
        }
    }
    checker.compare("philox", "Random123 known answers, kernel and reference", got.data(), want.data(), want.size(),
                    0.0);
    got.clear();
    want.clear();
    for (int t = 0; t < 1000; t++) {
        const uint32_t c[4] = {(uint32_t)rng.next(), (uint32_t)rng.next(), (uint32_t)rng.next(), (uint32_t)rng.next()};
        const uint32_t k[2] = {(uint32_t)rng.next(), (uint32_t)rng.next()};
        uint32_t ref[4];
        ref_philox(ref, c, k);
        const sg::Philox4 r = sg::philox4x32_10(sg::Philox4{{c[0], c[1], c[2], c[3]}}, k[0], k[1]);
        for (int w = 0; w < 4; w++) {
            got.push_back(r.v[w]);
            want.push_back(ref[w]);
        }
    }
    checker.compare("philox", "1000 random counters and keys", got.data(), want.data(), want.size(), 0.0);
}

// GatedLlama's host loop for one gate, with the reference generator: the gate in g, the soft probability in s.
void ref_router_gate(double *g, double *s, const float *z, const float *bias, int i, int j, double tau, bool noise,
                     uint64_t key, uint64_t offset, const float *hard_gate, const float *hard_soft) {
    const float ze = z[2 * j] + bias[2 * j], zs = z[2 * j + 1] + bias[2 * j + 1];
    double a = ze - zs;
    if (noise) {
        const uint32_t c[4] = {(uint32_t)i, (uint32_t)j, (uint32_t)offset, (uint32_t)(offset >> 32)};
        const uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
        uint32_t w[4];
        ref_philox(w, c, k);
        double u[2];
        for (int h = 0; h < 2; h++) u[h] = ((double)((((uint64_t)w[2 * h] << 32) | w[2 * h + 1]) >> 12) + 0.5) / 4503599627370496.0;
        a = (ze - std::log(-std::log(u[0]))) - (zs - std::log(-std::log(u[1])));
    }
    const double y = 1 / (1 + std::exp(-a / tau));
    *s = (float)y;
    *g = !hard_gate ? (a > 0) : hard_soft ? (float)(*hard_gate + (y - *hard_soft)) : *hard_gate;
}

// hard: 0 sampled, 1 another pass's gates, 2 another pass's gates with the straight-through surrogate
void check_router_gates(int n, bool noise, double tau, int hard) {
    auto z = random_floats(rng, (size_t)4 * n, -3.0f, 3.0f), bias = random_floats(rng, 4);
    auto hard_g = random_gates(rng, (size_t)2 * n), hard_s = random_floats(rng, (size_t)2 * n, 0.0f, 1.0f);
    const uint64_t key = rng.next(), offset = rng.next();
    std::vector<double> ref_g((size_t)2 * n), ref_s((size_t)2 * n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 2; j++) {
            const size_t at = (size_t)j * n + i;
            ref_router_gate(&ref_g[at], &ref_s[at], z.data() + 4 * i, bias.data(), i, j, tau, noise, key, offset,
                            hard ? &hard_g[at] : nullptr, hard == 2 ? &hard_s[at] : nullptr);
        }
    auto gates = nan_filled(ref_g.size()), soft = nan_filled(ref_s.size());
    sg_cpu_router_gates(gates.data(), soft.data(), z.data(), bias.data(), n, tau, noise, key, offset,
                        hard ? hard_g.data() : nullptr, hard == 2 ? hard_s.data() : nullptr);
    const char *modes[] = {"", " hard gates given", " straight-through surrogate"};
    std::snprintf(shape, sizeof shape, "n=%d tau=%g %s%s gates", n, tau, noise ? "Gumbel" : "deterministic", modes[hard]);
    checker.compare("router_gates", shape, gates.data(), ref_g.data(), ref_g.size(), 0.0);
    std::snprintf(shape, sizeof shape, "n=%d tau=%g %s%s soft", n, tau, noise ? "Gumbel" : "deterministic", modes[hard]);
    checker.compare("router_gates", shape, soft.data(), ref_s.data(), ref_s.size(), 0.0);
}

// With the logits of a module differing by delta, the Gumbel gate is a Bernoulli(sigmoid(delta)) draw: the execute
// rate over many rows is within 3 standard deviations of it (as the checker scales the error: about 3 to 4.4),
// and another offset draws other noise.
void check_router_gate_rates(int n, float delta) {
    std::vector<float> z((size_t)4 * n), bias(4, 0.0f), gates((size_t)2 * n), soft((size_t)2 * n);
    for (int i = 0; i < n; i++) {
        z[4 * i] = z[4 * i + 2] = delta;
        z[4 * i + 1] = z[4 * i + 3] = 0.0f;
    }
    const uint64_t key = rng.next();
    std::vector<float> first;
    double want = 1 / (1 + std::exp(-(double)delta)), rate[2] = {0, 0};
    for (uint64_t offset : {7ull, 8ull}) {
        sg_cpu_router_gates(gates.data(), soft.data(), z.data(), bias.data(), n, 1.0, 1, key, offset, nullptr, nullptr);
        for (int at = 0; at < 2 * n; at++) rate[offset - 7] += gates[at] / (2.0 * n);
        if (first.empty()) first = gates;
    }
    const double sigma = std::sqrt(want * (1 - want) / (2.0 * n));
    int same = 0;
    for (int at = 0; at < 2 * n; at++) same += first[at] == gates[at];
    const double got[3] = {rate[0], rate[1], (double)same / (2 * n)};
    // two independent Bernoulli draws agree with probability p^2 + (1-p)^2
    const double ref[3] = {want, want, want * want + (1 - want) * (1 - want)};
    std::snprintf(shape, sizeof shape, "n=%d delta=%g: rates at two offsets, agreement", n, delta);
    checker.compare("router_gates", shape, got, ref, 3, 3 * sigma);
}

void check_router_gates_backward(int n, double tau) {
    auto dgates = random_floats(rng, (size_t)2 * n), soft = random_floats(rng, (size_t)2 * n, 0.0f, 1.0f);
    auto dbias = random_floats(rng, 4);
    const float gate_grad = rng.uniform(-0.1f, 0.1f);
    std::vector<double> ref_dz((size_t)4 * n), ref_dbias(dbias.begin(), dbias.end());
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 2; j++) {
            const double s = soft[(size_t)j * n + i], c = (float)(dgates[(size_t)j * n + i] + gate_grad);
            ref_dz[(size_t)4 * i + 2 * j] = c * s * (1 - s) / tau;
            ref_dz[(size_t)4 * i + 2 * j + 1] = -c * s * (1 - s) / tau;
            ref_dbias[2 * j] += c * s * (1 - s) / tau;
            ref_dbias[2 * j + 1] -= c * s * (1 - s) / tau;
        }
    auto dz = nan_filled(ref_dz.size());
    sg_cpu_router_gates_backward(dz.data(), dbias.data(), dgates.data(), soft.data(), n, gate_grad, tau);
    std::snprintf(shape, sizeof shape, "n=%d tau=%g dz", n, tau);
    checker.compare("router_gates_bwd", shape, dz.data(), ref_dz.data(), ref_dz.size(), 1e-7);
    std::snprintf(shape, sizeof shape, "n=%d tau=%g dbias +=", n, tau);
    checker.compare("router_gates_bwd", shape, dbias.data(), ref_dbias.data(), 4, 1e-5);
}

// Several steps of the update as AdamW's plain loop wrote it, in double: the kernel must give the same bits.
void check_adamw(int64_t len, double grad_scale, double weight_decay) {
    auto p = random_floats(rng, len), m = random_floats(rng, len, -0.1f, 0.1f), v = random_floats(rng, len, 0.0f, 0.01f);
    std::vector<double> ref_p(p.begin(), p.end()), ref_m(m.begin(), m.end()), ref_v(v.begin(), v.end());
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    for (int t = 1; t <= 3; t++) {
        auto grad = random_floats(rng, len);
        const double lr = 1e-3 * t, step_size = lr / (1 - std::pow(b1, t)), corr2 = std::sqrt(1 - std::pow(b2, t));
        const double keep = 1 - lr * weight_decay;
        for (int64_t i = 0; i < len; i++) {
            const double g = (float)(grad[i] * grad_scale);
            const double mi = b1 * ref_m[i] + (1 - b1) * g, vi = b2 * ref_v[i] + (1 - b2) * g * g;
            ref_m[i] = (float)mi;
            ref_v[i] = (float)vi;
            ref_p[i] = (float)(ref_p[i] * keep - step_size * mi / (std::sqrt(vi) / corr2 + eps));
        }
        sg_cpu_adamw(p.data(), grad.data(), m.data(), v.data(), len, grad_scale, b1, b2, eps, step_size, corr2, keep);
    }
    const char *names[] = {"param", "m", "v"};
    const std::vector<float> *got[] = {&p, &m, &v};
    const std::vector<double> *want[] = {&ref_p, &ref_m, &ref_v};
    for (int o = 0; o < 3; o++) {
        std::snprintf(shape, sizeof shape, "len=%lld scale=%g decay=%g, 3 steps: %s", (long long)len, grad_scale,
                      weight_decay, names[o]);
        checker.compare("adamw", shape, got[o]->data(), want[o]->data(), len, 0.0);
    }
}

void check_sum_squares(int64_t len) {
    auto x = random_floats(rng, len, -3.0f, 3.0f);
    long double ref = 2.5;
    for (float e : x) ref += (long double)e * e;
    double acc = 2.5, want = (double)ref;
    sg_cpu_sum_squares(&acc, x.data(), len);
    std::snprintf(shape, sizeof shape, "len=%lld, acc 2.5 +=", (long long)len);
    checker.compare("sum_squares", shape, &acc, &want, 1, 1e-13);
}

}  // namespace

// The mask against the reference generator element by element (exact), and its drop rate within 5 standard
// deviations of rate; another offset draws another mask.
void check_dropout_mask(int64_t len, double rate) {
    const uint64_t key = rng.next(), offset = rng.next();
    const float keep = (float)(1.0 / (1.0 - rate));
    std::vector<float> want((size_t)len);
    for (int64_t i = 0; i < len; i++) {
        const uint32_t c[4] = {(uint32_t)i, (uint32_t)((uint64_t)i >> 32), (uint32_t)offset, (uint32_t)(offset >> 32)};
        const uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
        uint32_t w[4];
        ref_philox(w, c, k);
        const double u = ((double)((((uint64_t)w[0] << 32) | w[1]) >> 12) + 0.5) / 4503599627370496.0;
        want[(size_t)i] = u < rate ? 0.0f : keep;
    }
    auto mask = nan_filled((size_t)len);
    sg_cpu_dropout_mask(mask.data(), len, rate, key, offset);
    std::snprintf(shape, sizeof shape, "len=%lld rate=%g", (long long)len, rate);
    checker.compare("dropout_mask", shape, mask.data(), want.data(), want.size(), 0.0);
    if (len < 1000) return;
    auto other = nan_filled((size_t)len);
    sg_cpu_dropout_mask(other.data(), len, rate, key, offset + 1);
    double dropped = 0, same = 0;
    for (int64_t i = 0; i < len; i++) {
        dropped += mask[(size_t)i] == 0.0f;
        same += mask[(size_t)i] == other[(size_t)i];
    }
    const double sigma = std::sqrt(rate * (1 - rate) / (double)len);
    const double got[2] = {dropped / (double)len, same / (double)len};
    const double ref[2] = {rate, rate * rate + (1 - rate) * (1 - rate)};
    std::snprintf(shape, sizeof shape, "len=%lld rate=%g: drop rate, agreement with the next offset", (long long)len, rate);
    checker.compare("dropout_mask", shape, got, ref, 2, 5 * sigma);
}

int main() {
    for (int d : {1, 13, 1000, 4099, 4096}) check_rmsnorm(d > 1000 ? 5 : 7, d, 1e-5f, false);
    check_rmsnorm(1, 8, 1e-6f, false);
    check_rmsnorm(33, 257, 1e-6f, true);

    for (int rotate_half : {0, 1}) {
        check_rope(1, 1, 6, 10000.0f, rotate_half, 3);
        check_rope(5, 3, 8, 10000.0f, rotate_half, 12000);
        check_rope(17, 8, 64, 10000.0f, rotate_half, 9999);
        check_rope(9, 4, 128, 500000.0f, rotate_half, 16383);
    }

    check_attention("decode", {299}, 300, 4, 4, 64);
    check_attention("prefill", contiguous_positions(37, 0), 37, 4, 2, 8);
    check_attention("chunked prefill", contiguous_positions(70, 60), 130, 3, 3, 64);
    check_attention("routed prefill", kept_positions(rng, 200, 0.6), 200, 8, 2, 128);
    check_attention("routed prefill", kept_positions(rng, 1100, 0.05), 1100, 4, 1, 128);
    check_attention("unsorted", {5, 0, 49, 17, 17, 3, 30, 48, 1}, 50, 8, 2, 6);
    check_attention("prefill", contiguous_positions(33, 0), 33, 1, 1, 1);
    // Several sequences' caches in one k, v: decode steps of a batch (slots of 300 rows, in any order), then
    // pieces of two prompts whose rows share a start.
    check_attention("batched decode", {299, 0, 57, 130}, 1200, 8, 2, 64, {0, 900, 300, 600});
    check_attention("batched prompts", {0, 1, 2, 5, 6}, 100, 4, 4, 6, {40, 40, 40, 0, 0});

    for (int64_t len : {1, 7, 1000, 100003}) check_swiglu(len, false);
    check_swiglu(4097, true);

    check_softmax(1, 1, 1.0f);
    check_softmax(3, 7, 1.0f);
    check_softmax(65, 129, 30.0f);
    check_softmax(2, 32003, 10.0f);

    check_embedding(1, 1, 1);
    check_embedding(50, 13, 7);
    check_embedding(300, 40, 64);

    check_gather_rows(1, 1, 1);
    check_gather_rows(100, 61, 5);
    check_gather_rows(300, 250, 4096);

    check_scatter_add_rows(1, 1, 1);
    check_scatter_add_rows(100, 61, 5);
    check_scatter_rows(1, 1, 1);
    check_scatter_rows(100, 61, 5);
    check_scatter_rows(300, 250, 4096);
    check_scatter_add_rows(300, 250, 4096);

    for (int64_t len : {1, 9, 70001}) check_add(len);

    check_cross_entropy(1, 2, 3.0f);
    check_cross_entropy(6, 17, 15.0f);
    check_cross_entropy(40, 32000, 10.0f);

    check_compact(0, 0.5);
    check_compact(1, 1.0);
    check_compact(13, 0.0);
    check_compact(1000, 0.6);
    check_compact(5000, 0.75);

    check_row_dot(1, 1);
    check_row_dot(13, 7);
    check_row_dot(300, 4099);
    check_scale_rows(1, 1);
    check_scale_rows(13, 7);
    check_scale_rows(300, 4099);

    // Not d = 1: there dx = r w dy eps / (x^2 + eps), a difference of two terms ~1e5 times larger than itself,
    // which no float computation of the formula gets to 1e-5.
    for (int d : {2, 13, 1000, 4099}) check_rmsnorm_backward(d > 1000 ? 5 : 7, d, 1e-5f, true);
    check_rmsnorm_backward(300, 257, 1e-6f, true);  // past the parallel thresholds of both passes
    check_rmsnorm_backward(33, 64, 1e-6f, false);

    for (int rotate_half : {0, 1}) {
        check_rope_backward(1, 1, 6, 10000.0f, rotate_half, 3);
        check_rope_backward(17, 8, 64, 10000.0f, rotate_half, 9999);
        check_rope_backward(9, 4, 128, 500000.0f, rotate_half, 16383);
    }

    check_attention_backward("decode", {299}, 300, 4, 4, 64);
    check_attention_backward("prefill", contiguous_positions(37, 0), 37, 4, 2, 8);
    check_attention_backward("chunked prefill", contiguous_positions(70, 60), 130, 3, 3, 64);
    check_attention_backward("routed prefill", kept_positions(rng, 200, 0.6), 200, 8, 2, 128);
    check_attention_backward("unsorted", {5, 0, 49, 17, 17, 3, 30, 48, 1}, 60, 8, 2, 6);
    check_attention_backward("prefill", contiguous_positions(33, 0), 33, 1, 1, 1);

    for (int64_t len : {1, 7, 100003}) check_swiglu_backward(len, false);
    check_swiglu_backward(4097, true);

    check_cross_entropy_backward(1, 2, 3.0f, false, false);
    check_cross_entropy_backward(6, 17, 15.0f, true, false);
    check_cross_entropy_backward(40, 32000, 10.0f, true, false);
    check_cross_entropy_backward(17, 1001, 10.0f, false, true);

    // {n, k, m, r}: one row (decode), a partial row block, odd sizes, the largest rank, past the parallel thresholds
    for (auto s : std::vector<std::array<int, 4>>{{1, 1, 1, 1}, {1, 64, 64, 16}, {7, 13, 5, 3}, {9, 100, 37, 8},
                                                   {33, 257, 129, 16}, {300, 64, 172, 16}, {20, 48, 40, 256},
                                                   {517, 1001, 300, 7}}) {
        check_lora_forward(s[0], s[1], s[2], s[3]);
        check_lora_backward(s[0], s[1], s[2], s[3]);
    }

    check_philox();
    for (bool noise : {false, true})
        for (int hard : {0, 1, 2}) check_router_gates(noise ? 333 : 17, noise, hard ? 1.0 : 3.7, hard);
    check_router_gates(5000, true, 5.0, 0);  // past the parallel threshold
    check_router_gate_rates(50000, 0.0f);
    check_router_gate_rates(50000, 1.0f);
    for (int n : {1, 13, 1000}) check_router_gates_backward(n, n == 13 ? 1.0 : 4.2);
    check_adamw(1, 1.0, 0.0);
    check_adamw(1003, 0.37, 0.01);
    check_adamw(100003, 1.0, 0.1);  // past the parallel threshold
    check_sum_squares(1);
    check_sum_squares(100003);
    check_dropout_mask(1, 0.1);
    check_dropout_mask(1001, 0.5);
    check_dropout_mask(200003, 0.1);  // past the parallel threshold

    return checker.finish("cpu kernels");
}
