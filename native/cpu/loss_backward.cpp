// Backward of the per-row cross-entropy.
#include "skipgpt.h"
#include <cmath>

// logits, dlogits[n, vocab]: dlogits[i, j] = scale * c_i * (softmax(logits[i])[j] - [j == targets[i]]),
// c_i = dloss[i] or 1. The row's max and sum are taken before any of it is written, and element j is read
// before it is written, so dlogits may be logits. The sum is in double, as in the forward.
void sg_cpu_cross_entropy_backward(float *dlogits, const float *logits, const int32_t *targets, const float *dloss,
                                   float scale, int n, int vocab) {
#pragma omp parallel for schedule(static) if (n > 16)
    for (int i = 0; i < n; i++) {
        const float *li = logits + (int64_t)i * vocab;
        float *di = dlogits + (int64_t)i * vocab;
        float mx = li[0];
        for (int j = 1; j < vocab; j++) mx = li[j] > mx ? li[j] : mx;
        double sum = 0.0;
        for (int j = 0; j < vocab; j++) sum += std::exp((double)(li[j] - mx));
        const float c = scale * (dloss ? dloss[i] : 1.0f), c_over_sum = (float)(c / sum);
        for (int j = 0; j < vocab; j++) di[j] = std::exp(li[j] - mx) * c_over_sum;
        di[targets[i]] -= c;
    }
}
