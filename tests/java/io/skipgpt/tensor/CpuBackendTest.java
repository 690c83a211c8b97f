package io.skipgpt.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.bytedeco.openblas.global.openblas;
import org.junit.jupiter.api.Test;

class CpuBackendTest {
    @Test
    void blasThreadsHonourTheEnvironmentElseUseEveryProcessor() {
        assertEquals(8, CpuBackend.blasThreads(null, 8));
        assertEquals(3, CpuBackend.blasThreads("3", 8));
        assertEquals(4, CpuBackend.blasThreads(" 4 ", 8));
        assertEquals(8, CpuBackend.blasThreads("0", 8));
        assertEquals(8, CpuBackend.blasThreads("-2", 8));
        assertEquals(8, CpuBackend.blasThreads("many", 8));
    }

    @Test
    void openingTheBackendSetsTheOpenBlasThreadCount() {
        try (Backend ignored = new CpuBackend()) {
            int expected = CpuBackend.blasThreads(System.getenv("OPENBLAS_NUM_THREADS"),
                    Runtime.getRuntime().availableProcessors());
            assertEquals(expected, openblas.blas_get_num_threads());
        }
    }

    @Test
    void blasThreadsCanBeSetForSmallModels() {
        try (Backend ignored = new CpuBackend()) {
            int before = openblas.blas_get_num_threads();
            try {
                CpuBackend.setBlasThreads(1);
                assertEquals(1, openblas.blas_get_num_threads());
            } finally {
                CpuBackend.setBlasThreads(before);
            }
        }
    }
}
