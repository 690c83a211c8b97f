package io.skipgpt.tensor;

import java.util.Random;

/**
 * Not a test: matmul rates through {@link CudaBackend} (cuBLAS at fp32, TF32 and bf16) at LLaMA-7B projection
 * shapes, prefill and decode, as one markdown table on stdout, the precisions of one shape side by side.
 * tests/gpu/run.sh runs it on a GPU machine. The weight is stored by {@link Backend#uploadWeight}, so at bf16 it
 * is bf16 and each product includes rounding x to bf16, as in the model. Each figure is the mean of {@value #REPS}
 * products after {@value #WARMUP} warm-ups, timed from the host around a stream synchronisation (a one-element
 * download), so launch overhead counts.
 */
final class CudaMatmulBench {
    private static final int WARMUP = 3, REPS = 20;

    private CudaMatmulBench() {}

    public static void main(String[] args) {
        // {n, k, m}: out[n, m] = x[n, k] · w[m, k]ᵀ
        int[][] shapes = {{4096, 4096, 4096}, {4096, 4096, 11008}, {4096, 11008, 4096}, {64, 4096, 4096},
                {1, 4096, 4096}, {1, 4096, 11008}};
        CudaBackend.Precision[] precisions = CudaBackend.Precision.values();
        Backend[] backends = new Backend[precisions.length];
        try {
            for (int i = 0; i < precisions.length; i++) backends[i] = CudaBackend.open(precisions[i]);
            System.out.println("| precision | n x k x m | time | TFLOP/s | weight GB/s |");
            System.out.println("|---|---|---|---|---|");
            Random random = new Random(7);
            for (int[] s : shapes) {
                int n = s[0], k = s[1], m = s[2];
                try (Tensor xHost = uniform(random, n, k); Tensor wHost = uniform(random, m, k)) {
                    for (int i = 0; i < precisions.length; i++) {
                        Backend b = backends[i];
                        try (Tensor x = b.upload(xHost); Tensor w = b.uploadWeight(wHost);
                             Tensor out = b.allocate(Tensor.DType.F32, n, m)) {
                            double seconds = time(b, out, x, w);
                            System.out.printf("| %s | %d x %d x %d | %.3f ms | %.1f | %.0f |%n", precisions[i], n, k, m,
                                    seconds * 1e3, 2.0 * n * k * m / seconds / 1e12, w.bytes() / seconds / 1e9);
                        }
                    }
                }
            }
        } finally {
            for (Backend b : backends) {
                if (b != null) b.close();
            }
        }
    }

    /** A host tensor of uniform values in [-1, 1), made in one array. */
    private static Tensor uniform(Random random, int rows, int cols) {
        float[] values = new float[rows * cols];
        for (int i = 0; i < values.length; i++) values[i] = 2 * random.nextFloat() - 1;
        return Tensor.of(values, rows, cols);
    }

    private static double time(Backend b, Tensor out, Tensor x, Tensor w) {
        try (Tensor one = Tensor.f32(1)) {
            Tensor first = out.reshape((int) out.size(), 1).rows(0, 1);
            for (int i = 0; i < WARMUP; i++) b.matmul(out, x, w);
            b.copy(one, first);
            long start = System.nanoTime();
            for (int i = 0; i < REPS; i++) b.matmul(out, x, w);
            b.copy(one, first);
            return (System.nanoTime() - start) / 1e9 / REPS;
        }
    }
}
