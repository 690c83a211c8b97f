// GPU probe: is there an NVIDIA driver and a device? Answered by dlopen()ing libcuda.so.1 and asking the
// driver API directly, so that neither this library nor the JVM ever links CUDA on a CPU-only machine.
#include "skipgpt.h"
#include <dlfcn.h>
#include <cstdio>

namespace {
typedef int (*cu_init_fn)(unsigned int);
typedef int (*cu_device_get_count_fn)(int *);
typedef int (*cu_device_get_fn)(int *, int);
typedef int (*cu_device_get_name_fn)(char *, int, int);
}

int sg_gpu_probe(char *msg, int msg_len) {
    if (msg_len <= 0) return 0;
    msg[0] = '\0';
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        std::snprintf(msg, msg_len, "no NVIDIA driver (libcuda.so.1 not found)");
        return 0;
    }
    auto cu_init = (cu_init_fn)dlsym(lib, "cuInit");
    auto cu_count = (cu_device_get_count_fn)dlsym(lib, "cuDeviceGetCount");
    auto cu_get = (cu_device_get_fn)dlsym(lib, "cuDeviceGet");
    auto cu_name = (cu_device_get_name_fn)dlsym(lib, "cuDeviceGetName");
    if (!cu_init || !cu_count || !cu_get || !cu_name) {
        std::snprintf(msg, msg_len, "libcuda.so.1 lacks the driver API entry points");
        return 0;
    }
    int rc = cu_init(0);
    if (rc != 0) {
        std::snprintf(msg, msg_len, "cuInit failed with CUDA error %d", rc);
        return 0;
    }
    int count = 0;
    rc = cu_count(&count);
    if (rc != 0 || count <= 0) {
        std::snprintf(msg, msg_len, "the NVIDIA driver reports no CUDA device");
        return 0;
    }
    int dev = 0;
    if (cu_get(&dev, 0) != 0 || cu_name(msg, msg_len, dev) != 0) {
        std::snprintf(msg, msg_len, "CUDA device 0");
    }
    msg[msg_len - 1] = '\0';
    return count;  // the library stays loaded: a CUDA backend will need the driver anyway
}
