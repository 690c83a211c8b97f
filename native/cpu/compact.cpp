// Compaction of a routing decision: keep mask -> ascending indices of the kept rows.
#include "skipgpt.h"

// keep[n] (0 = skip) -> idx[0 .. *count), *count
void sg_cpu_compact(int32_t *idx, int32_t *count, const uint8_t *keep, int n) {
    int32_t c = 0;
    for (int i = 0; i < n; i++)
        if (keep[i]) idx[c++] = i;
    *count = c;
}
