package io.skipgpt.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.UnaryOperator;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Every op of {@link CudaBackend} against {@link ReferenceBackend} (plain Java, so that a GPU machine needs no
 * OpenBLAS to run this) on fresh seeded random inputs of awkward shapes, including the shapes that take the CUDA
 * kernels' other paths (attention's tiled, split-key and wide-head kernels). Device outputs start as NaN, so an
 * element a kernel skips fails the test; errors are relative to max(1, |ref|). Every GEMM precision is checked:
 * fp32 to 1e-5 and TF32 to 4e-3 (TF32 keeps 10 mantissa bits of each input, so a product may be off by ~2^-10
 * relative, the same way for a whole row when the inputs are truncated), bf16 to 4e-2 (8 significant bits, three
 * fewer than TF32), all growing like sqrt(k) for k-term sums. The bf16 GEMMs are also held to
 * {@value #BF16_ROUNDED} against the reference on inputs rounded to bf16 on the host (nearest, ties to even): what
 * remains is fp32 accumulation, which tensor cores truncate. Skipped where {@link GpuProbe} finds no GPU; where it
 * finds one, the backend must open.
 */
class CudaBackendTest {
    private static final Backend REF = new ReferenceBackend();
    private static final double FP32 = 1e-5, TF32 = 4e-3, BF16 = 4e-2, BF16_ROUNDED = 1e-4;
    /** op -> {largest error seen, tolerance} */
    private static final Map<String, double[]> ERRORS = new TreeMap<>();
    private static GpuProbe.Result gpu;
    private static Backend cuda, cudaTf32, cudaBf16;

    private final Tensors t = new Tensors(20261128L);

    @BeforeAll
    static void open() {
        gpu = GpuProbe.probe();
        if (!gpu.available()) return;
        cuda = CudaBackend.open(CudaBackend.Precision.FP32);
        cudaTf32 = CudaBackend.open(CudaBackend.Precision.TF32);
        cudaBf16 = CudaBackend.open(CudaBackend.Precision.BF16);
        System.out.println("CUDA backend on " + gpu.message());
    }

    /** Each test skips, visibly, where there is no GPU. */
    @BeforeEach
    void needsGpu() {
        assumeTrue(gpu.available(), () -> "no GPU: " + gpu.message());
    }

    @AfterAll
    static void report() {
        if (cuda != null) cuda.close();
        if (cudaTf32 != null) cudaTf32.close();
        if (cudaBf16 != null) cudaBf16.close();
        ERRORS.forEach((op, e) -> System.out.printf("OK cuda %-22s max err %.2e (tol %.0e)%n", op, e[0], e[1]));
    }

    @AfterEach
    void free() {
        t.close();
    }

    /** An op on some backend: {@code in} gives that backend's copy of a host input, {@code o} its outputs. */
    interface Call {
        void run(Backend b, UnaryOperator<Tensor> in, Tensor[] o);
    }

    // ------------------------------------------------------------------------------------------------ memory

    @Test
    void allocateZeroesAndCopiesRoundTrip() {
        try (Tensor z = cuda.allocate(Tensor.DType.F32, 3, 5); Tensor zi = cuda.allocate(Tensor.DType.I32, 7);
             Tensor back = cuda.download(z); Tensor backI = cuda.download(zi)) {
            assertEquals(Device.CUDA, z.device());
            assertArrayEquals(new float[15], back.toFloatArray());
            assertArrayEquals(new int[7], backI.toIntArray());
        }
        Tensor host = t.uniform(-1, 1, 6, 4), ids = t.ints(3, -1, 7);
        try (Tensor d = cuda.upload(host); Tensor di = cuda.upload(ids); Tensor d2 = cuda.allocate(Tensor.DType.F32, 2, 4)) {
            assertArrayEquals(host.toFloatArray(), t.keep(cuda.download(d)).toFloatArray());
            assertArrayEquals(ids.toIntArray(), t.keep(cuda.download(di)).toIntArray());
            // device to device between row views, and into a host view
            cuda.copy(d2, d.rows(3, 2));
            assertArrayEquals(host.rows(3, 2).toFloatArray(), t.keep(cuda.download(d2)).toFloatArray());
            Tensor into = t.poisoned(6, 4);
            cuda.copy(into.rows(1, 2), d2);
            assertArrayEquals(host.rows(3, 2).toFloatArray(), into.rows(1, 2).toFloatArray());
            // a host view uploaded into a device view
            cuda.copy(d.rows(0, 1), host.rows(5, 1));
            assertArrayEquals(host.rows(5, 1).toFloatArray(), t.keep(cuda.download(d.rows(0, 1))).toFloatArray());
        }
    }

    @Test
    void deviceTensorsStayOffTheHost() {
        try (Tensor d = cuda.allocate(Tensor.DType.F32, 2, 2)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> d.get(0));
            assertTrue(e.getMessage().startsWith("Tensor[2, 2] F32 on CUDA: "), e.getMessage());
            assertThrows(IllegalStateException.class, d::toFloatArray);
            Tensor host = t.uniform(-1, 1, 2, 2);
            IllegalArgumentException wrong = assertThrows(IllegalArgumentException.class, () -> cuda.matmul(d, host, d));
            assertEquals("matmul: x [2, 2] is on CPU, but this backend computes on CUDA: move it with Backend.copy "
                    + "or upload", wrong.getMessage());
            assertThrows(IllegalArgumentException.class, () -> REF.softmax(d));
        }
    }

    @Test
    void backendsPickTheCudaBackend() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream notes = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        try (Backend b = Backends.open("cuda", notes)) {
            assertInstanceOf(CudaBackend.class, b);
        }
        try (Backend b = Backends.open("auto", notes)) {
            assertInstanceOf(CudaBackend.class, b);
        }
        assertEquals(List.of("device auto: using GPU " + gpu.message() + " (CUDA backend)"),
                bytes.toString(StandardCharsets.UTF_8).lines().toList());
    }

    @Test
    void closingTheBackendFreesWhatIsStillOpen() {
        CudaBackend b = (CudaBackend) CudaBackend.open(CudaBackend.Precision.FP32);
        Tensor left = b.allocate(Tensor.DType.F32, 1000);
        assertEquals(1, b.liveTensors());
        b.close();
        assertEquals(0, b.liveTensors(), "closing the backend frees the tensor left open");
        left.close(); // freed by the backend already: nothing happens
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> b.allocate(Tensor.DType.F32, 1));
        assertEquals("the CUDA backend is closed", e.getMessage());
    }

    // ------------------------------------------------------------------------------------------------ forward

    /**
     * Every precision; at bf16 the weight comes from uploadWeight (from the host, and from the device), and is
     * checked against the reference on the fp32 inputs and on the inputs rounded to bf16 as the backend rounds
     * them. The shapes grow and shrink, so the backend's bf16 scratch grows and is reused.
     */
    @Test
    void matmul() {
        // {n, k, m}: decode rows, odd sizes, k = 0 gives zeros, and a few large ones
        int[][] shapes = {{1, 1, 1}, {1, 7, 5}, {1, 4097, 33}, {3, 64, 32}, {17, 33, 7}, {64, 127, 129},
                {257, 300, 129}, {7, 129, 257}, {3, 0, 5}, {1, 0, 4}, {0, 5, 3}, {512, 1024, 768}, {1, 2048, 3000},
                {2, 3, 2}};
        for (int[] s : shapes) {
            int n = s[0], k = s[1], m = s[2];
            Tensor x = t.uniform(-1, 1, n, k), w = t.uniform(-1, 1, m, k), xr = bf16Rounded(x), wr = bf16Rounded(w);
            double growth = Math.max(1, Math.sqrt(k / 64.0)); // a k-term sum's rounding grows like sqrt(k)
            String label = Arrays.toString(s);
            compare("matmul", label, FP32 * growth, cuda, new int[] {n, m}, (b, in, o) -> b.matmul(o[0], in.apply(x), in.apply(w)));
            compare("matmul tf32", label, TF32 * growth, cudaTf32, new int[] {n, m},
                    (b, in, o) -> b.matmul(o[0], in.apply(x), in.apply(w)));
            compare("matmul bf16", label, BF16 * growth, cudaBf16, new int[] {n, m},
                    (b, in, o) -> b.matmul(o[0], in.apply(x), t.keep(b.uploadWeight(w))));
            compare("matmul bf16 rounded", label + " w from the device", BF16_ROUNDED * growth, cudaBf16, new int[] {n, m},
                    (b, in, o) -> {
                        if (b == REF) b.matmul(o[0], xr, wr);
                        else b.matmul(o[0], in.apply(x), t.keep(b.uploadWeight(in.apply(w))));
                    });
        }
    }

    /**
     * A bf16 weight stays on the device (no download, no copy to the host), copies device to device bit for bit,
     * works through a row view, and has no dw (it is frozen); at fp32 uploadWeight is a plain upload, and at BF16
     * an fp32 weight still works (as at TF32).
     */
    @Test
    void bf16Weights() {
        Tensor x = t.uniform(-1, 1, 5, 33), w = t.uniform(-1, 1, 9, 33), wr = bf16Rounded(w);
        try (Tensor w16 = cudaBf16.uploadWeight(w); Tensor copy = cudaBf16.allocate(Tensor.DType.BF16, 9, 33)) {
            assertEquals(Tensor.DType.BF16, w16.dtype());
            assertEquals(Device.CUDA, w16.device());
            assertArrayEquals(new int[] {9, 33}, w16.shape());
            assertThrows(IllegalArgumentException.class, () -> cudaBf16.download(w16));
            assertThrows(IllegalArgumentException.class, () -> cudaBf16.copy(t.poisoned(9, 33), w16));
            IllegalStateException host = assertThrows(IllegalStateException.class, () -> w16.get(0));
            assertTrue(host.getMessage().contains("cannot read BF16"), host.getMessage());
            cudaBf16.copy(copy, w16);
            Tensor[] outs = new Tensor[2];
            for (int i = 0; i < 2; i++) {
                try (Tensor dx = cudaBf16.upload(x); Tensor out = cudaBf16.upload(t.poisoned(5, 9))) {
                    cudaBf16.matmul(out, dx, i == 0 ? w16 : copy);
                    outs[i] = t.keep(cudaBf16.download(out));
                }
            }
            assertArrayEquals(outs[0].toFloatArray(), outs[1].toFloatArray());
            try (Tensor dw = cudaBf16.allocate(Tensor.DType.F32, 9, 33); Tensor dy = cudaBf16.upload(t.uniform(-1, 1, 5, 9));
                 Tensor dx = cudaBf16.upload(x)) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> cudaBf16.matmulBackward(null, dw, dy, dx, w16, false));
                assertEquals("matmulBackward: w [9, 33] is BF16, frozen storage without a gradient: pass dw = null, "
                        + "or keep a trained weight in F32", e.getMessage());
            }
        }
        compare("matmul bf16 rounded", "rows 2..6 of a bf16 weight", BF16_ROUNDED, cudaBf16, new int[] {5, 5},
                (b, in, o) -> {
                    if (b == REF) b.matmul(o[0], bf16Rounded(x), wr.rows(2, 5));
                    else b.matmul(o[0], in.apply(x), t.keep(b.uploadWeight(w)).rows(2, 5));
                });
        try (Tensor stored = cuda.uploadWeight(w)) {
            assertEquals(Tensor.DType.F32, stored.dtype());
            assertArrayEquals(w.toFloatArray(), t.keep(cuda.download(stored)).toFloatArray());
        }
        compare("matmul bf16, fp32 w", "[5, 33, 9]", TF32, cudaBf16, new int[] {5, 9},
                (b, in, o) -> b.matmul(o[0], in.apply(x), in.apply(w)));
    }

    @Test
    void matmulIntoARowView() {
        Tensor x = t.uniform(-1, 1, 3, 20), w = t.uniform(-1, 1, 6, 20), big = t.uniform(-1, 1, 10, 6);
        compareAll("matmul", "into rows 4..6 of 10", FP32, cuda, new Tensor[] {big},
                (b, in, o) -> b.matmul(o[0].rows(4, 3), in.apply(x), in.apply(w)));
    }

    @Test
    void rmsnorm() {
        for (int n : new int[] {1, 3, 17, 64}) {
            for (int d : new int[] {1, 7, 33, 257, 1001, 4096}) {
                Tensor x = t.uniform(-3, 3, n, d), weight = t.uniform(-2, 2, d);
                float eps = d % 2 == 0 ? 1e-6f : 1e-5f;
                String label = "n " + n + " d " + d;
                compare("rmsnorm", label, FP32, cuda, new int[] {n, d},
                        (b, in, o) -> b.rmsnorm(o[0], in.apply(x), in.apply(weight), eps));
                compareAll("rmsnorm", label + " in place", FP32, cuda, new Tensor[] {x},
                        (b, in, o) -> b.rmsnorm(o[0], o[0], in.apply(weight), eps));
            }
        }
    }

    @Test
    void rope() {
        int[][] heads = {{1, 2}, {3, 6}, {5, 8}, {2, 64}, {32, 128}}; // {heads, headDim}
        for (RopeStyle style : RopeStyle.values()) {
            for (float theta : new float[] {10000f, 500000f}) {
                for (int n : new int[] {1, 3, 17, 64}) {
                    for (int[] h : heads) {
                        Tensor x = t.uniform(-2, 2, n, h[0] * h[1]);
                        Tensor pos = t.anyOf(n, 10001);
                        pos.setInt(0, n % 2 == 0 ? 0 : 10000); // both ends of the range appear
                        compareAll("rope", style + " theta " + theta + " n " + n + " heads " + Arrays.toString(h),
                                FP32, cuda, new Tensor[] {x}, (b, in, o) -> b.rope(o[0], in.apply(pos), h[1], theta, style));
                    }
                }
            }
        }
    }

    @Test
    void attention() {
        for (int group : new int[] {1, 2, 4}) {
            for (int headDim : new int[] {2, 6, 8, 64, 128, 160}) { // 160 > 128: the wide-head kernel
                for (int n : new int[] {1, 3, 17, 100}) {
                    int kvHeads = headDim >= 64 ? 1 : 2, heads = kvHeads * group, cache = 37 + 60 * group;
                    // a routed prefill: kept queries at scattered original positions, in no particular order
                    attention("attention", String.format("group %d headDim %d n %d cache %d", group, headDim, n, cache),
                            FP32, cuda, t.distinct(Math.min(n, cache), cache), null, cache, heads, kvHeads, headDim);
                }
            }
        }
        // dense prefills over several key tiles, and decode against a long cache (split keys)
        attention("attention", "prefill 300, LLaMA-2 heads", FP32, cuda, t.ints(range(0, 300)), null, 300, 32, 32, 128);
        attention("attention", "prefill 200, GQA 8", FP32, cuda, t.ints(range(0, 200)), null, 200, 32, 8, 128);
        attention("attention", "decode at 4095", FP32, cuda, t.ints(4095), null, 4096, 32, 8, 128);
        attention("attention", "batched decode", FP32, cuda, t.ints(4095, 17, 1000, 2047), null, 4096, 8, 2, 64);
    }


    // Attention over fresh q [n, heads·hd] in [-3, 3] and k, v [cache, kvHeads·hd] in [-1, 1] on gpu against the
    // reference; starts null (one cache) or the per-query cache starts.
    private void attention(String op, String label, double tol, Backend gpu, Tensor pos, Tensor starts, int cache,
                           int heads, int kvHeads, int headDim) {
        int n = (int) pos.size();
        Tensor q = t.uniform(-3, 3, n, heads * headDim);
        Tensor k = t.uniform(-1, 1, cache, kvHeads * headDim), v = t.uniform(-1, 1, cache, kvHeads * headDim);
        compare(op, label, tol, gpu, new int[] {n, heads * headDim},
                (b, in, o) -> b.attention(o[0], in.apply(q), in.apply(k), in.apply(v), in.apply(pos),
                        starts == null ? null : in.apply(starts), heads, kvHeads, headDim));
    }

    /**
     * At BF16, 64 queries and more run as two bf16 GEMMs around a causal softmax: a dense prefill with GQA, a
     * routed one (scattered positions, a long cache), and one whose scores are cut into many query chunks by a
     * small budget. Fewer queries take the fp32 kernel, exactly as at FP32.
     */
    @Test
    void attentionAtBf16() {
        try (Backend chunked = CudaBackend.open(CudaBackend.Precision.BF16, 64 << 10)) {
            attention("attention bf16", "prefill 300, GQA 4", BF16, cudaBf16, t.ints(range(0, 300)), null, 300, 8, 2, 64);
            attention("attention bf16", "routed prefill 100 of 400, LLaMA-3 heads", BF16, cudaBf16, t.distinct(100, 400),
                    null, 400, 32, 8, 128);
            attention("attention bf16", "prefill 333 in chunks of 16", BF16, chunked, t.ints(range(0, 333)), null, 333, 8, 4, 32);
            attention("attention bf16", "head_dim 80, 64 queries in chunks", BF16, chunked, t.ints(range(136, 200)), null, 200, 4, 1, 80);
        }
        int n = CudaBackend.GEMM_ATTENTION_MIN_ROWS - 1;
        attention("attention bf16, few queries", "fp32 kernel", FP32, cudaBf16, t.ints(range(0, n)), null, n, 4, 2, 16);
    }


    @Test
    void attentionWithKeyStarts() {
        // Per-query caches in one k, v (the per-query kernel): every head size class it takes (32, 64, 128 and 256
        // columns a warp) and the wide fallback beyond; decode steps in slots of 520 rows, out of order, one short.
        for (int headDim : new int[] {6, 64, 128, 200, 300}) {
            attention("attention keyStarts", "decode steps headDim " + headDim, FP32, cuda, t.ints(519, 0, 300, 7), t.ints(1040, 0, 520, 1560),
                    2080, 8, 2, headDim);
        }
        attention("attention keyStarts", "16 decode steps, LLaMA-2 heads", FP32, cuda, t.ints(range(496, 512)),
                t.ints(IntStream.range(0, 16).map(i -> 512 * i).toArray()), 16 * 512, 32, 32, 128);
        attention("attention keyStarts", "prompt pieces", FP32, cuda, t.ints(0, 1, 2, 30, 31), t.ints(40, 40, 40, 0, 0), 80, 4, 4, 64);
    }


    @Test
    void swiglu() {
        for (int n : new int[] {1, 3, 17, 64}) {
            for (int d : new int[] {1, 11, 1001, 2049}) {
                Tensor gate = t.uniform(-10, 10, n, d), up = t.uniform(-2, 2, n, d);
                String label = "n " + n + " d " + d;
                compare("swiglu", label, FP32, cuda, new int[] {n, d}, (b, in, o) -> b.swiglu(o[0], in.apply(gate), in.apply(up)));
                compareAll("swiglu", label + " in place", FP32, cuda, new Tensor[] {gate},
                        (b, in, o) -> b.swiglu(o[0], o[0], in.apply(up)));
            }
        }
    }

    @Test
    void softmax() {
        for (int n : new int[] {1, 3, 17, 64}) {
            for (int d : new int[] {1, 2, 31, 1000, 32003}) {
                compareAll("softmax", "n " + n + " d " + d, FP32, cuda, new Tensor[] {t.uniform(-20, 20, n, d)},
                        (b, in, o) -> b.softmax(o[0]));
            }
        }
    }

    @Test
    void embedding() {
        for (int n : new int[] {1, 3, 17, 64}) {
            for (int d : new int[] {1, 19, 300, 4096}) {
                Tensor table = t.uniform(-1, 1, 37, d), ids = t.anyOf(n, 37);
                compare("embedding", "n " + n + " d " + d, 0, cuda, new int[] {n, d},
                        (b, in, o) -> b.embedding(o[0], in.apply(table), in.apply(ids)));
            }
        }
    }

    @Test
    void gatherRows() {
        for (int count : new int[] {0, 1, 3, 17, 64}) {
            for (int d : new int[] {1, 13, 2048}) {
                Tensor src = t.uniform(-1, 1, 100, d), idx = t.distinct(count, 100);
                compare("gatherRows", "count " + count + " d " + d, 0, cuda, new int[] {count, d},
                        (b, in, o) -> b.gatherRows(o[0], in.apply(src), in.apply(idx)));
            }
        }
    }

    @Test
    void scatterAddRows() {
        for (int count : new int[] {0, 1, 3, 17, 64}) {
            for (int d : new int[] {1, 13, 2048}) {
                Tensor src = t.uniform(-1, 1, count, d), idx = t.distinct(count, 100);
                // rows outside idx must come back bit for bit: the comparison covers the whole of dst
                compareAll("scatterAddRows", "count " + count + " d " + d, 0, cuda, new Tensor[] {t.uniform(-1, 1, 100, d)},
                        (b, in, o) -> b.scatterAddRows(o[0], in.apply(src), in.apply(idx)));
            }
        }
    }

    @Test
    void scatterRows() {
        for (int count : new int[] {0, 1, 3, 17, 64}) {
            for (int d : new int[] {1, 13, 2048}) {
                Tensor src = t.uniform(-1, 1, count, d), idx = t.distinct(count, 100);
                compareAll("scatterRows", "count " + count + " d " + d, 0, cuda, new Tensor[] {t.uniform(-1, 1, 100, d)},
                        (b, in, o) -> b.scatterRows(o[0], in.apply(src), in.apply(idx)));
            }
        }
    }

    @Test
    void add() {
        for (int[] s : new int[][] {{1, 1}, {3, 7}, {17, 1001}, {64, 4099}}) {
            Tensor src = t.uniform(-1, 1, s);
            compareAll("add", Arrays.toString(s), 0, cuda, new Tensor[] {t.uniform(-1, 1, s)},
                    (b, in, o) -> b.add(o[0], in.apply(src)));
        }
    }

    @Test
    void crossEntropy() {
        for (int n : new int[] {1, 3, 17, 64}) {
            for (int vocab : new int[] {2, 7, 513, 32000}) {
                Tensor logits = t.uniform(-10, 10, n, vocab), targets = t.anyOf(n, vocab);
                compare("crossEntropy", "n " + n + " vocab " + vocab, FP32, cuda, new int[] {n},
                        (b, in, o) -> b.crossEntropy(o[0], in.apply(logits), in.apply(targets)));
            }
        }
    }

    @Test
    void rowDot() {
        for (int n : new int[] {0, 1, 3, 17, 64}) {
            for (int d : new int[] {1, 13, 4099}) {
                Tensor a = t.uniform(-1, 1, n, d), c = t.uniform(-1, 1, n, d);
                compare("rowDot", "n " + n + " d " + d, FP32 * Math.max(1, Math.sqrt(d / 64.0)), cuda, new int[] {n},
                        (b, in, o) -> b.rowDot(o[0], in.apply(a), in.apply(c)));
            }
        }
    }

    @Test
    void scaleRows() {
        for (int n : new int[] {0, 1, 3, 17, 64}) {
            for (int d : new int[] {1, 13, 4099}) {
                Tensor s = t.uniform(-2, 2, n);
                compareAll("scaleRows", "n " + n + " d " + d, FP32, cuda, new Tensor[] {t.uniform(-1, 1, n, d)},
                        (b, in, o) -> b.scaleRows(o[0], in.apply(s)));
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ backward

    @Test
    void matmulBackward() {
        // {n, k, m}: m = 0 makes dx an empty sum; n = 0 leaves dw as it was
        int[][] shapes = {{1, 1, 1}, {1, 7, 5}, {1, 300, 129}, {3, 64, 32}, {17, 33, 7}, {64, 127, 129},
                {257, 300, 129}, {7, 129, 257}, {3, 5, 0}, {0, 4, 3}, {256, 768, 512}};
        for (int[] s : shapes) {
            int n = s[0], k = s[1], m = s[2];
            Tensor x = t.uniform(-1, 1, n, k), w = t.uniform(-1, 1, m, k), dy = t.uniform(-1, 1, n, m);
            double growth = Math.max(1, Math.sqrt(Math.max(n, m) / 64.0)); // dx sums m terms, dw n terms
            String label = Arrays.toString(s);
            for (Backend backend : new Backend[] {cuda, cudaTf32}) {
                String op = backend == cuda ? "matmulBackward" : "matmulBackward tf32";
                double tol = (backend == cuda ? FP32 : TF32) * growth;
                compareAll(op, label + " dx, dw +=", tol, backend, new Tensor[] {t.poisoned(n, k), t.uniform(-1, 1, m, k)},
                        (b, in, o) -> b.matmulBackward(o[0], o[1], in.apply(dy), in.apply(x), in.apply(w), false));
                compareAll(op, label + " dx +=", tol, backend, new Tensor[] {t.uniform(-1, 1, n, k)},
                        (b, in, o) -> b.matmulBackward(o[0], null, in.apply(dy), in.apply(x), in.apply(w), true));
                compareAll(op, label + " dw += only", tol, backend, new Tensor[] {t.uniform(-1, 1, m, k)},
                        (b, in, o) -> b.matmulBackward(null, o[0], in.apply(dy), in.apply(x), in.apply(w), false));
            }
            // through a bf16 weight: dx only (dy rounded to bf16), written and added into
            Tensor wr = bf16Rounded(w), dyr = bf16Rounded(dy);
            double dxGrowth = Math.max(1, Math.sqrt(m / 64.0));
            compare("matmulBackward bf16", label + " dx", BF16 * dxGrowth, cudaBf16, new int[] {n, k},
                    (b, in, o) -> b.matmulBackward(o[0], null, in.apply(dy), in.apply(x), t.keep(b.uploadWeight(w)), false));
            compareAll("matmulBackward bf16 rounded", label + " dx +=", BF16_ROUNDED * dxGrowth, cudaBf16,
                    new Tensor[] {t.uniform(-1, 1, n, k)}, (b, in, o) -> {
                        if (b == REF) b.matmulBackward(o[0], null, dyr, x, wr, true);
                        else b.matmulBackward(o[0], null, in.apply(dy), in.apply(x), t.keep(b.uploadWeight(w)), true);
                    });
        }
    }

    @Test
    void rmsnormBackward() {
        for (int n : new int[] {1, 3, 17, 64}) {
            for (int d : new int[] {2, 7, 33, 257, 1001, 4096}) {
                Tensor x = t.uniform(-3, 3, n, d), weight = t.uniform(-2, 2, d), dy = t.uniform(-1, 1, n, d);
                float eps = d % 2 == 0 ? 1e-6f : 1e-5f;
                String label = "n " + n + " d " + d;
                // dWeight sums n rows (atomically on the GPU)
                compareAll("rmsnormBackward", label, FP32, cuda, new Tensor[] {t.poisoned(n, d), t.uniform(-1, 1, d)},
                        (b, in, o) -> b.rmsnormBackward(o[0], o[1], in.apply(dy), in.apply(x), in.apply(weight), eps));
                compare("rmsnormBackward", label + " no dWeight", FP32, cuda, new int[] {n, d},
                        (b, in, o) -> b.rmsnormBackward(o[0], null, in.apply(dy), in.apply(x), in.apply(weight), eps));
            }
        }
    }

    @Test
    void ropeBackward() {
        int[][] heads = {{1, 2}, {3, 6}, {2, 64}, {32, 128}}; // {heads, headDim}
        for (RopeStyle style : RopeStyle.values()) {
            for (int n : new int[] {1, 3, 64}) {
                for (int[] h : heads) {
                    Tensor pos = t.anyOf(n, 10001);
                    compareAll("ropeBackward", style + " n " + n + " heads " + Arrays.toString(h), FP32, cuda,
                            new Tensor[] {t.uniform(-2, 2, n, h[0] * h[1])},
                            (b, in, o) -> b.ropeBackward(o[0], in.apply(pos), h[1], 500000f, style));
                }
            }
        }
    }

    @Test
    void attentionBackward() {
        for (int group : new int[] {1, 2, 4}) {
            for (int headDim : new int[] {2, 6, 64, 128}) {
                for (int n : new int[] {1, 3, 17}) {
                    int kvHeads = headDim >= 64 ? 1 : 2, heads = kvHeads * group, cache = 37 + 60 * group;
                    // routed queries at scattered positions in no order, and repeated ones (one position, two rows)
                    attentionBackward(String.format("group %d headDim %d n %d cache %d distinct", group, headDim, n, cache),
                            t.distinct(n, cache), cache, heads, kvHeads, headDim);
                    attentionBackward(String.format("group %d headDim %d n %d cache %d repeats", group, headDim, n, cache),
                            t.anyOf(n, 5), cache, heads, kvHeads, headDim);
                }
            }
        }
        attentionBackward("prefill 80", t.ints(range(0, 80)), 80, 8, 2, 8);
        attentionBackward("prefill 128, GQA 4", t.ints(range(0, 128)), 128, 8, 2, 64);
    }

    private void attentionBackward(String label, Tensor pos, int cache, int heads, int kvHeads, int headDim) {
        int n = (int) pos.size();
        Tensor q = t.uniform(-3, 3, n, heads * headDim), dOut = t.uniform(-1, 1, n, heads * headDim);
        Tensor k = t.uniform(-1, 1, cache, kvHeads * headDim), v = t.uniform(-1, 1, cache, kvHeads * headDim);
        Tensor[] start = {t.poisoned(n, heads * headDim), t.uniform(-1, 1, cache, kvHeads * headDim),
                t.uniform(-1, 1, cache, kvHeads * headDim)};
        compareAll("attentionBackward", label, FP32, cuda, start, (b, in, o) -> b.attentionBackward(o[0], o[1], o[2],
                in.apply(dOut), in.apply(q), in.apply(k), in.apply(v), in.apply(pos), heads, kvHeads, headDim));
    }

    @Test
    void swigluBackward() {
        for (int n : new int[] {1, 3, 17, 64}) {
            for (int d : new int[] {1, 11, 2049}) {
                Tensor gate = t.uniform(-10, 10, n, d), up = t.uniform(-2, 2, n, d), dOut = t.uniform(-1, 1, n, d);
                String label = "n " + n + " d " + d;
                compareAll("swigluBackward", label, FP32, cuda, new Tensor[] {t.poisoned(n, d), t.poisoned(n, d)},
                        (b, in, o) -> b.swigluBackward(o[0], o[1], in.apply(dOut), in.apply(gate), in.apply(up)));
                compareAll("swigluBackward", label + " in place", FP32, cuda, new Tensor[] {gate, up},
                        (b, in, o) -> b.swigluBackward(o[0], o[1], in.apply(dOut), o[0], o[1]));
            }
        }
    }

    @Test
    void crossEntropyBackward() {
        for (int n : new int[] {1, 3, 17, 64}) {
            for (int vocab : new int[] {2, 7, 513, 32000}) {
                Tensor logits = t.uniform(-10, 10, n, vocab), targets = t.anyOf(n, vocab), dLoss = t.uniform(0, 2, n);
                String label = "n " + n + " vocab " + vocab;
                compare("crossEntropyBackward", label + " dLoss", FP32, cuda, new int[] {n, vocab},
                        (b, in, o) -> b.crossEntropyBackward(o[0], in.apply(logits), in.apply(targets), in.apply(dLoss), 0.5f));
                compareAll("crossEntropyBackward", label + " mean, in place", FP32, cuda, new Tensor[] {logits},
                        (b, in, o) -> b.crossEntropyBackward(o[0], o[0], in.apply(targets), null, 1f / n));
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ training

    /**
     * Gates exact (the same uniforms as the reference's Philox), soft probabilities to their last bit or so (the
     * device's log and exp); rows past one block of threads.
     */
    @Test
    void routerGates() {
        for (Tensors.GateCase c : t.gateCases(0, 1, 17, 300, 5000)) {
            int n = c.logits().rows();
            compareAll("routerGates", c.label(), 1e-7, cuda, new Tensor[] {t.poisoned(2, n), t.poisoned(2, n)},
                    (b, in, o) -> b.routerGates(o[0], o[1], in.apply(c.logits()), in.apply(c.bias()), c.noise(), c.tau(),
                            c.hardGates() == null ? null : in.apply(c.hardGates()),
                            c.hardSoft() == null ? null : in.apply(c.hardSoft())));
        }
    }

    @Test
    void routerGatesBackward() {
        for (int n : new int[] {0, 1, 17, 300, 70000}) {
            Tensor dGates = t.uniform(-1, 1, 2, n), soft = t.uniform(0, 1, 2, n);
            float gateGrad = (float) (t.random().nextDouble() * 0.2 - 0.1);
            // dBias sums n rows, in another order than the reference
            compareAll("routerGatesBackward", "n " + n, 1e-5, cuda, new Tensor[] {t.poisoned(n, 4), t.uniform(-1, 1, 4)},
                    (b, in, o) -> b.routerGatesBackward(o[0], o[1], in.apply(dGates), in.apply(soft), gateGrad, 2.5));
        }
    }

    /** Correctly rounded double operations, none fused: the reference's bits. */
    @Test
    void adamw() {
        for (int[] s : new int[][] {{1}, {7, 13}, {300, 129}, {4096, 1025}}) {
            Tensor grad = t.uniform(-1, 1, s);
            for (double gradScale : new double[] {1, 0.37}) {
                AdamUpdate u = new AdamUpdate(1e-3 / (1 - 0.9 * 0.9), Math.sqrt(1 - 0.999 * 0.999), 0.9, 0.999, 1e-8,
                        1 - 1e-3 * 0.01, gradScale);
                compareAll("adamw", Arrays.toString(s) + " scale " + gradScale, 0, cuda,
                        new Tensor[] {t.uniform(-1, 1, s), t.uniform(-0.1f, 0.1f, s), t.uniform(0, 0.01f, s)},
                        (b, in, o) -> b.adamw(o[0], in.apply(grad), o[1], o[2], u));
            }
        }
        // Subnormal moments, gradients and parameters (moments decaying under zero gradients end there): the
        // device must keep them as the CPU does, not flush them to zero.
        float tiny = 1e-39f;
        Tensor grad = t.keep(Tensor.of(new float[] {0, 0, tiny / 10, 0}, 4));
        AdamUpdate u = new AdamUpdate(1e-3, 1, 0.9, 0.999, 1e-8, 1, 1);
        compareAll("adamw", "subnormals", 0, cuda, new Tensor[] {t.keep(Tensor.of(new float[] {0.5f, 0.5f, 0.5f, tiny}, 4)),
                        t.keep(Tensor.of(new float[] {tiny, 0, 0, 0}, 4)), t.keep(Tensor.of(new float[] {0, tiny, 0, 0}, 4))},
                (b, in, o) -> b.adamw(o[0], in.apply(grad), o[1], o[2], u));
    }

    /** Integer Philox and one comparison per element: the reference's mask exactly. */
    @Test
    void dropoutMask() {
        for (int[] s : new int[][] {{1}, {7, 13}, {257, 1031}}) {
            compareAll("dropoutMask", Arrays.toString(s), 0, cuda, new Tensor[] {t.poisoned(s)},
                    (b, in, o) -> b.dropoutMask(o[0], 0.1, new Philox(0x1234_5678_9abcL, 42)));
        }
    }

    @Test
    void sumOfSquares() {
        List<Tensor> xs = List.of(t.uniform(-3, 3, 1), t.uniform(-3, 3, 17, 33), t.uniform(-3, 3, 4097, 1025));
        List<Tensor> onDevice = xs.stream().map(x -> t.keep(cuda.upload(x))).toList();
        double want = REF.sumOfSquares(xs), got = cuda.sumOfSquares(onDevice);
        System.out.printf("OK cuda sumOfSquares %.17g, reference %.17g%n", got, want);
        // The reference adds one term after another in double: its own rounding grows with the count, up to
        // count * 2^-53 relative (the device's tree of sums is far closer). On the H200 they differed by 1.6e-12.
        long count = xs.stream().mapToLong(Tensor::size).sum();
        assertEquals(want, got, count * 0x1p-53 * want);
        assertEquals(0.0, cuda.sumOfSquares(List.of()));
    }

    // ------------------------------------------------------------------------------------------------ harness

    @Test
    void lora() {
        // {n, k, m, r}: decode (outputs split over blocks), partial row blocks, the largest rank, a LLaMA-7B-like shape
        int[][] shapes = {{1, 1, 1, 1}, {1, 64, 64, 16}, {7, 13, 5, 3}, {33, 257, 129, 16}, {300, 64, 172, 16},
                {20, 48, 40, 256}, {0, 5, 4, 2}, {64, 4096, 1024, 16}};
        for (int[] s : shapes) {
            int n = s[0], k = s[1], m = s[2], r = s[3];
            Tensor x = t.uniform(-1, 1, n, k), a = t.uniform(-1, 1, r, k), b = t.uniform(-1, 1, m, r);
            Tensor dy = t.uniform(-1, 1, n, m);
            float scale = 32f / r;
            // sums of k·r (forward), n·m (backward) terms of O(1), times scale; the backward adds with atomics
            double tol = FP32 * scale * Math.max(1, Math.sqrt(Math.max(k, Math.max(n, m)) * r / 64.0));
            String label = Arrays.toString(s);
            compareAll("loraForward", label + " out +=", tol, cuda, new Tensor[] {t.uniform(-1, 1, n, m)},
                    (be, in, o) -> be.loraForward(o[0], in.apply(x), in.apply(a), in.apply(b), scale));
            compareAll("loraBackward", label + " dx, dA, dB +=", tol, cuda,
                    new Tensor[] {t.uniform(-1, 1, n, k), t.uniform(-1, 1, r, k), t.uniform(-1, 1, m, r)},
                    (be, in, o) -> be.loraBackward(o[0], o[1], o[2], in.apply(dy), in.apply(x), in.apply(a), in.apply(b),
                            scale));
        }
    }

    /**
     * Runs a call on the reference backend with host copies of the outputs' starting contents (NaN for outputs
     * that are written, values for those added into, inputs for in-place calls), and on the GPU with uploads of
     * them and of every input the call asks for; downloads the GPU's outputs and compares every element.
     */
    private void compareAll(String op, String label, double tol, Backend gpu, Tensor[] start, Call call) {
        Tensor[] want = new Tensor[start.length], got = new Tensor[start.length];
        for (int i = 0; i < start.length; i++) want[i] = t.copy(start[i]);
        call.run(REF, UnaryOperator.identity(), want);

        Map<Tensor, Tensor> uploads = new IdentityHashMap<>();
        try {
            for (int i = 0; i < start.length; i++) got[i] = t.keep(gpu.upload(start[i]));
            call.run(gpu, host -> uploads.computeIfAbsent(host, gpu::upload), got);
            for (int i = 0; i < start.length; i++) {
                check(op, label + " output " + i, tol, want[i], t.keep(gpu.download(got[i])));
            }
        } finally {
            uploads.values().forEach(Tensor::close);
        }
    }

    /** Runs a call into a fresh NaN-poisoned output of the given shape on both backends and compares. */
    private void compare(String op, String label, double tol, Backend gpu, int[] outShape, Call call) {
        compareAll(op, label, tol, gpu, new Tensor[] {t.poisoned(outShape)}, call);
    }

    private static void check(String op, String label, double tol, Tensor want, Tensor got) {
        Compare.check(op, label, tol, want, got, "cuda", ERRORS);
    }

    /** A host copy of x rounded to bf16 (nearest, ties to even), as uploadWeight and the bf16 GEMMs round. */
    private Tensor bf16Rounded(Tensor x) {
        Tensor r = t.copy(x);
        for (long i = 0; i < r.size(); i++) {
            int bits = Float.floatToRawIntBits(r.get(i)); // finite: add half an ulp (rounding a tie to even), truncate
            r.set(i, Float.intBitsToFloat((bits + 0x7FFF + ((bits >>> 16) & 1)) & 0xFFFF0000));
        }
        return r;
    }

    private static int[] range(int from, int to) {
        int[] v = new int[to - from];
        Arrays.setAll(v, i -> from + i);
        return v;
    }
}
