/*
 * libskipgpt_env: loaded by Java before libskipgpt_cpu, and before libgomp with it.
 *
 * libgomp reads its environment once, when it is loaded. By default its idle threads spin, and so do
 * OpenBLAS's pthreads: on a small machine the two pools then steal each other's cores between every GEMM and
 * kernel (measured on 2 cores: stories260K perplexity 10.6 s spinning, 1.4 s passive). Asking for passive
 * waiting here, unless the user chose otherwise, is the only place early enough to do it.
 */
#include <stdlib.h>

__attribute__((constructor)) static void skipgpt_passive_openmp(void) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
}
