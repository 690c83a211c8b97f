// Helpers shared by the native kernel tests: a seeded generator, NaN poisoning, and one comparison that
// prints a line per check and counts failures.
#ifndef SKIPGPT_TESTS_CHECK_H
#define SKIPGPT_TESTS_CHECK_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <vector>

// splitmix64: tiny, seeded, identical on every platform.
struct Rng {
    uint64_t state;
    explicit Rng(uint64_t seed) : state(seed) {}
    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
    float uniform(float lo, float hi) { return lo + (hi - lo) * (float)uniform(); }
    int below(int n) { return (int)(next() % (uint64_t)n); }  // [0, n)
};

inline std::vector<float> random_floats(Rng &rng, size_t len, float lo = -1.0f, float hi = 1.0f) {
    std::vector<float> v(len);
    for (auto &x : v) x = rng.uniform(lo, hi);
    return v;
}

// Gates of another pass: each 0 or 1.
inline std::vector<float> random_gates(Rng &rng, size_t len) {
    std::vector<float> v(len);
    for (auto &x : v) x = rng.below(2);
    return v;
}

inline std::vector<float> nan_filled(size_t len) {
    return std::vector<float>(len, std::numeric_limits<float>::quiet_NaN());
}

// A random subset of [0, universe) of the given size, in random order (a permuted index subset).
inline std::vector<int32_t> random_subset(Rng &rng, int universe, int size) {
    std::vector<int32_t> all(universe);
    std::iota(all.begin(), all.end(), 0);
    for (int i = 0; i < size; i++) std::swap(all[i], all[i + rng.below(universe - i)]);
    all.resize(size);
    return all;
}

// Sorted positions in [0, t) kept with probability keep, as a routed prefill passes them.
inline std::vector<int32_t> kept_positions(Rng &rng, int t, double keep) {
    std::vector<int32_t> p;
    for (int i = 0; i < t; i++)
        if (rng.uniform() < keep) p.push_back(i);
    if (p.empty()) p.push_back(t - 1);
    return p;
}

inline std::vector<int32_t> contiguous_positions(int n, int start) {
    std::vector<int32_t> p(n);
    std::iota(p.begin(), p.end(), start);
    return p;
}

struct Checker {
    int checks = 0, failures = 0;

    // Passes when every got[i] is finite (so the kernel wrote it over the NaN poison) and
    // |got[i] - ref[i]| <= rtol * (|ref[i]| + max|ref|): relative to the element and to the output's scale, so
    // elements near zero are judged against the magnitude they were computed from. rtol = 0 means exact.
    template <typename G, typename R>
    bool compare(const char *kernel, const char *shape, const G *got, const R *ref, size_t len, double rtol) {
        double scale = 0.0;
        for (size_t i = 0; i < len; i++) scale = std::max(scale, std::fabs((double)ref[i]));
        double max_abs = 0.0, max_rel = 0.0;
        size_t unwritten = 0, first_bad = len;
        for (size_t i = 0; i < len; i++) {
            double g = (double)got[i], r = (double)ref[i];
            if (!std::isfinite(g)) {
                unwritten++;
                if (first_bad == len) first_bad = i;
                continue;
            }
            double err = std::fabs(g - r), denom = std::fabs(r) + scale;
            max_abs = std::max(max_abs, err);
            double rel = denom > 0 ? err / denom : (err > 0 ? INFINITY : 0.0);
            if (rel > rtol && first_bad == len) first_bad = i;
            max_rel = std::max(max_rel, rel);
        }
        bool ok = unwritten == 0 && max_rel <= rtol;
        checks++;
        if (!ok) failures++;
        std::printf("%-18s %-52s max abs err %.2e  rel %.2e  (rtol %.0e)  %s", kernel, shape, max_abs, max_rel,
                    rtol, ok ? "ok" : "FAIL");
        if (unwritten) std::printf("  %zu element(s) not finite / not written", unwritten);
        if (!ok && first_bad < len)
            std::printf("  first bad [%zu]: got %.9g want %.9g", first_bad, (double)got[first_bad],
                        (double)ref[first_bad]);
        std::printf("\n");
        return ok;
    }

    int finish(const char *what) {
        std::printf("%s: %d checks, %d failed\n", what, checks, failures);
        return failures ? 1 : 0;
    }
};

#endif
