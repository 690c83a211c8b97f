// The probe must answer without crashing on any machine, and must explain itself when it finds nothing.
#include "skipgpt.h"
#include <cstdio>
#include <cstring>

int main() {
    char msg[256];
    std::memset(msg, 'x', sizeof msg);
    int count = sg_gpu_probe(msg, sizeof msg);
    size_t len = strnlen(msg, sizeof msg);
    std::printf("gpu_probe: %d device(s): %s\n", count, msg);
    if (len == sizeof msg || len == 0) {
        std::printf("FAIL: probe message not NUL-terminated or empty\n");
        return 1;
    }
    return count >= 0 ? 0 : 1;
}
