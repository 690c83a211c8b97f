// Cross-entropy per row.
#include "skipgpt.h"
#include <cmath>

// loss[i] = logsumexp(logits[i, :]) - logits[i, targets[i]], logits[n, vocab]
void sg_cpu_cross_entropy(float *loss, const float *logits, const int32_t *targets, int n, int vocab) {
#pragma omp parallel for schedule(static) if (n > 16)
    for (int i = 0; i < n; i++) {
        const float *li = logits + (int64_t)i * vocab;
        float mx = li[0];
        for (int j = 1; j < vocab; j++) mx = li[j] > mx ? li[j] : mx;
        double sum = 0.0;
        for (int j = 0; j < vocab; j++) sum += std::exp((double)(li[j] - mx));
        loss[i] = (float)(std::log(sum) + mx - li[targets[i]]);
    }
}
