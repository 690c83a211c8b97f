package io.skipgpt.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Every op of {@link CpuBackend} against {@link ReferenceBackend} on fresh seeded random inputs of awkward shapes.
 * Outputs start as NaN so that an element a kernel skips fails the test; errors are relative to max(1, |ref|).
 * The largest error per op is printed at the end.
 */
class BackendTest {
    private static final Backend REF = new ReferenceBackend();
    private static final Backend CPU = new CpuBackend();
    /** op -> {largest error seen, tolerance} */
    private static final Map<String, double[]> ERRORS = new TreeMap<>();
    private static final double FP32 = 1e-5;

    private final Tensors t = new Tensors(20240613L);

    @AfterEach
    void free() {
        t.close();
    }

    @AfterAll
    static void report() {
        ERRORS.forEach((op, e) -> System.out.printf("OK %-20s max err %.2e (tol %.0e)%n", op, e[0], e[1]));
    }

    @Test
    void matmul() {
        // {n, k, m}: n = 1 takes the sgemv path; odd and non-multiple-of-8 sizes; k = 0 gives zeros
        int[][] shapes = {{1, 1, 1}, {1, 7, 5}, {1, 300, 129}, {1, 4097, 33}, {3, 64, 32}, {3, 5, 1},
                {17, 33, 7}, {64, 127, 129}, {257, 300, 129}, {7, 129, 257}, {64, 1001, 3}, {3, 0, 5}, {1, 0, 4}};
        for (int[] s : shapes) {
            int n = s[0], k = s[1], m = s[2];
            Tensor x = t.uniform(-1, 1, n, k), w = t.uniform(-1, 1, m, k);
            // float rounding errors of a k-term sum grow like sqrt(k): 1e-5 up to k = 64, 8e-5 at k = 4097
            double tol = FP32 * Math.max(1, Math.sqrt(k / 64.0));
            compare("matmul", Arrays.toString(s), tol, new int[] {n, m}, (b, out) -> b.matmul(out, x, w));
        }
    }

    @Test
    void rmsnorm() {
        for (int n : new int[] {1, 3, 17, 64}) {
            for (int d : new int[] {1, 7, 33, 257, 1001}) {
                Tensor x = t.uniform(-3, 3, n, d), weight = t.uniform(-2, 2, d);
                float eps = d % 2 == 0 ? 1e-6f : 1e-5f;
                String label = "n " + n + " d " + d;
                compare("rmsnorm", label, FP32, new int[] {n, d}, (b, out) -> b.rmsnorm(out, x, weight, eps));
                compareInPlace("rmsnorm", label + " in place", FP32, x, (b, io) -> b.rmsnorm(io, io, weight, eps));
            }
        }
    }

    @Test
    void rope() {
        int[][] heads = {{1, 2}, {3, 6}, {5, 8}, {2, 64}, {1, 128}}; // {heads, headDim}
        for (RopeStyle style : RopeStyle.values()) {
            for (float theta : new float[] {10000f, 500000f}) {
                for (int n : new int[] {1, 3, 17, 64}) {
                    for (int[] h : heads) {
                        Tensor x = t.uniform(-2, 2, n, h[0] * h[1]);
                        Tensor pos = t.anyOf(n, 10001);
                        pos.setInt(0, n % 2 == 0 ? 0 : 10000); // both ends of the range appear
                        compareInPlace("rope", style + " theta " + theta + " n " + n + " heads " + Arrays.toString(h),
                                FP32, x, (b, io) -> b.rope(io, pos, h[1], theta, style));
                    }
                }
            }
        }
    }

    @Test
    void attention() {
        for (int group : new int[] {1, 2, 4}) {
            for (int headDim : new int[] {2, 6, 8, 64}) {
                for (int n : new int[] {1, 3, 17}) {
                    int kvHeads = headDim == 64 ? 1 : 2, heads = kvHeads * group, cache = 37 + 60 * group;
                    // a routed prefill: kept queries at scattered original positions, in no particular order
                    Tensor pos = t.distinct(n, cache);
                    attention("attention", String.format("group %d headDim %d n %d cache %d", group, headDim, n, cache),
                            pos, null, cache, heads, kvHeads, headDim);
                }
            }
        }
        // a dense prefill: every position once, in order
        int[] all = new int[64];
        Arrays.setAll(all, i -> i);
        attention("attention", "prefill 64", t.ints(all), null, 64, 8, 2, 8);
    }

    // Attention over fresh q [n, heads·hd] in [-3, 3] and k, v [cache, kvHeads·hd] in [-1, 1]; starts null (one
    // cache) or the per-query cache starts.
    private void attention(String op, String label, Tensor pos, Tensor starts, int cache, int heads, int kvHeads,
                           int headDim) {
        int n = (int) pos.size();
        Tensor q = t.uniform(-3, 3, n, heads * headDim);
        Tensor k = t.uniform(-1, 1, cache, kvHeads * headDim), v = t.uniform(-1, 1, cache, kvHeads * headDim);
        compare(op, label, FP32, new int[] {n, heads * headDim},
                (b, out) -> b.attention(out, q, k, v, pos, starts, heads, kvHeads, headDim));
    }

    @Test
    void attentionWithKeyStarts() {
        // Caches of several sequences as slots of 40 rows of one k, v: decode steps (one query per sequence, slots
        // out of order) and prompt pieces (several queries of one sequence share a start).
        attention("attention keyStarts", "decode steps", t.ints(39, 0, 17, 5), t.ints(80, 0, 120, 40), 160, 8, 2, 6);
        attention("attention keyStarts", "prompt pieces", t.ints(0, 1, 2, 30, 31), t.ints(40, 40, 40, 0, 0), 80, 4, 4, 8);
    }


    /** One call over slices of a shared cache gives, bit for bit, what one call per slice gives. */
    @Test
    void keyStartsMatchSeparateCaches() {
        int slot = 64, heads = 4, kvHeads = 2, headDim = 16;
        int[] positions = {63, 0, 31, 9}, startRows = {128, 64, 0, 192};
        int n = positions.length;
        Tensor q = t.uniform(-3, 3, n, heads * headDim), pos = t.ints(positions);
        Tensor k = t.uniform(-1, 1, n * slot, kvHeads * headDim), v = t.uniform(-1, 1, n * slot, kvHeads * headDim);
        Tensor together = t.poisoned(n, heads * headDim), apart = t.poisoned(n, heads * headDim);
        CPU.attention(together, q, k, v, pos, t.ints(startRows), heads, kvHeads, headDim);
        for (int i = 0; i < n; i++) {
            CPU.attention(apart.rows(i, 1), q.rows(i, 1), k.rows(startRows[i], slot), v.rows(startRows[i], slot),
                    t.ints(positions[i]), heads, kvHeads, headDim);
        }
        assertArrayEquals(apart.toFloatArray(), together.toFloatArray());
    }

    @Test
    void swiglu() {
        for (int n : new int[] {1, 3, 17, 64}) {
            for (int d : new int[] {1, 11, 1001, 2049}) { // 64 x 2049 passes the kernel's parallel threshold
                Tensor gate = t.uniform(-10, 10, n, d), up = t.uniform(-2, 2, n, d);
                String label = "n " + n + " d " + d;
                compare("swiglu", label, FP32, new int[] {n, d}, (b, out) -> b.swiglu(out, gate, up));
                compareInPlace("swiglu", label + " in place", FP32, gate, (b, io) -> b.swiglu(io, io, up));
            }
        }
    }

    @Test
    void softmax() {
        for (int n : new int[] {1, 3, 17, 64}) {
            for (int d : new int[] {1, 2, 31, 1000, 32003}) {
                compareInPlace("softmax", "n " + n + " d " + d, FP32, t.uniform(-20, 20, n, d), Backend::softmax);
            }
        }
    }

    @Test
    void embedding() {
        for (int n : new int[] {1, 3, 17, 64}) {
            for (int d : new int[] {1, 19, 300}) {
                Tensor table = t.uniform(-1, 1, 37, d), ids = t.anyOf(n, 37);
                compare("embedding", "n " + n + " d " + d, 0, new int[] {n, d}, (b, out) -> b.embedding(out, table, ids));
            }
        }
    }

    @Test
    void gatherRows() {
        for (int count : new int[] {0, 1, 3, 17, 64}) {
            for (int d : new int[] {1, 13, 2048}) {
                Tensor src = t.uniform(-1, 1, 100, d), idx = t.distinct(count, 100);
                compare("gatherRows", "count " + count + " d " + d, 0, new int[] {count, d},
                        (b, out) -> b.gatherRows(out, src, idx));
            }
        }
    }

    @Test
    void scatterAddRows() {
        for (int count : new int[] {0, 1, 3, 17, 64}) {
            for (int d : new int[] {1, 13, 2048}) {
                Tensor src = t.uniform(-1, 1, count, d), idx = t.distinct(count, 100);
                // rows outside idx must come back bit for bit: the comparison covers the whole of dst
                compareInPlace("scatterAddRows", "count " + count + " d " + d, 0, t.uniform(-1, 1, 100, d),
                        (b, dst) -> b.scatterAddRows(dst, src, idx));
            }
        }
    }

    @Test
    void scatterRows() {
        for (int count : new int[] {0, 1, 3, 17, 64}) {
            for (int d : new int[] {1, 13, 2048}) {
                Tensor src = t.uniform(-1, 1, count, d), idx = t.distinct(count, 100);
                compareInPlace("scatterRows", "count " + count + " d " + d, 0, t.uniform(-1, 1, 100, d),
                        (b, dst) -> b.scatterRows(dst, src, idx));
            }
        }
    }

    @Test
    void add() {
        for (int[] s : new int[][] {{1, 1}, {3, 7}, {17, 1001}, {64, 4099}}) {
            Tensor src = t.uniform(-1, 1, s);
            compareInPlace("add", Arrays.toString(s), 0, t.uniform(-1, 1, s), (b, dst) -> b.add(dst, src));
        }
    }

    @Test
    void crossEntropy() {
        for (int n : new int[] {1, 3, 17, 64}) {
            for (int vocab : new int[] {2, 7, 513, 32000}) {
                Tensor logits = t.uniform(-10, 10, n, vocab), targets = t.anyOf(n, vocab);
                compare("crossEntropy", "n " + n + " vocab " + vocab, FP32, new int[] {n},
                        (b, loss) -> b.crossEntropy(loss, logits, targets));
            }
        }
    }

    @Test
    void rowDot() {
        for (int n : new int[] {0, 1, 3, 17, 64}) {
            for (int d : new int[] {1, 13, 4099}) {
                Tensor a = t.uniform(-1, 1, n, d), b = t.uniform(-1, 1, n, d);
                // a d-term sum, as in matmul
                compare("rowDot", "n " + n + " d " + d, FP32 * Math.max(1, Math.sqrt(d / 64.0)), new int[] {n},
                        (be, out) -> be.rowDot(out, a, b));
            }
        }
    }

    @Test
    void scaleRows() {
        for (int n : new int[] {0, 1, 3, 17, 64}) {
            for (int d : new int[] {1, 13, 4099}) {
                Tensor s = t.uniform(-2, 2, n);
                compareInPlace("scaleRows", "n " + n + " d " + d, FP32, t.uniform(-1, 1, n, d), (b, x) -> b.scaleRows(x, s));
            }
        }
    }

    @Test
    void matmulBackward() {
        // {n, k, m}: n = 1 takes the sgemv path for dx; m = 0 makes dx an empty sum; n = 0 leaves dw as it was
        int[][] shapes = {{1, 1, 1}, {1, 7, 5}, {1, 300, 129}, {3, 64, 32}, {17, 33, 7}, {64, 127, 129},
                {257, 300, 129}, {7, 129, 257}, {3, 5, 0}, {0, 4, 3}};
        for (int[] s : shapes) {
            int n = s[0], k = s[1], m = s[2];
            Tensor x = t.uniform(-1, 1, n, k), w = t.uniform(-1, 1, m, k), dy = t.uniform(-1, 1, n, m);
            // dx sums m terms, dw n terms
            double tol = FP32 * Math.max(1, Math.sqrt(Math.max(n, m) / 64.0));
            String label = Arrays.toString(s);
            compareAll("matmulBackward", label + " dx, dw +=", tol, new Tensor[] {t.poisoned(n, k), t.uniform(-1, 1, m, k)},
                    (b, o) -> b.matmulBackward(o[0], o[1], dy, x, w, false));
            compareAll("matmulBackward", label + " dx +=", tol, new Tensor[] {t.uniform(-1, 1, n, k)},
                    (b, o) -> b.matmulBackward(o[0], null, dy, x, w, true));
            compareAll("matmulBackward", label + " dw += only", tol, new Tensor[] {t.uniform(-1, 1, m, k)},
                    (b, o) -> b.matmulBackward(null, o[0], dy, x, w, false));
        }
    }

    @Test
    void rmsnormBackward() {
        for (int n : new int[] {1, 3, 17, 64}) {
            for (int d : new int[] {2, 7, 33, 257, 1001}) { // d = 1 is ill-conditioned (see test_cpu_kernels.cpp)
                Tensor x = t.uniform(-3, 3, n, d), weight = t.uniform(-2, 2, d), dy = t.uniform(-1, 1, n, d);
                float eps = d % 2 == 0 ? 1e-6f : 1e-5f;
                String label = "n " + n + " d " + d;
                // dWeight sums n rows
                compareAll("rmsnormBackward", label, FP32, new Tensor[] {t.poisoned(n, d), t.uniform(-1, 1, d)},
                        (b, o) -> b.rmsnormBackward(o[0], o[1], dy, x, weight, eps));
                compare("rmsnormBackward", label + " no dWeight", FP32, new int[] {n, d},
                        (b, dx) -> b.rmsnormBackward(dx, null, dy, x, weight, eps));
            }
        }
    }

    @Test
    void ropeBackward() {
        int[][] heads = {{1, 2}, {3, 6}, {2, 64}, {1, 128}}; // {heads, headDim}
        for (RopeStyle style : RopeStyle.values()) {
            for (int n : new int[] {1, 3, 64}) {
                for (int[] h : heads) {
                    Tensor pos = t.anyOf(n, 10001);
                    compareInPlace("ropeBackward", style + " n " + n + " heads " + Arrays.toString(h), FP32,
                            t.uniform(-2, 2, n, h[0] * h[1]), (b, io) -> b.ropeBackward(io, pos, h[1], 500000f, style));
                }
            }
        }
    }

    @Test
    void attentionBackward() {
        for (int group : new int[] {1, 2, 4}) {
            for (int headDim : new int[] {2, 6, 64}) {
                for (int n : new int[] {1, 3, 17}) {
                    int kvHeads = headDim == 64 ? 1 : 2, heads = kvHeads * group, cache = 37 + 60 * group;
                    // routed queries at scattered positions in no order, and repeated ones (one position, two rows)
                    attentionBackward(String.format("group %d headDim %d n %d cache %d distinct", group, headDim, n, cache),
                            t.distinct(n, cache), cache, heads, kvHeads, headDim);
                    attentionBackward(String.format("group %d headDim %d n %d cache %d repeats", group, headDim, n, cache),
                            t.anyOf(n, 5), cache, heads, kvHeads, headDim);
                }
            }
        }
        int[] all = new int[80]; // a dense prefill over more than one key tile of the CPU kernel
        Arrays.setAll(all, i -> i);
        attentionBackward("prefill 80", t.ints(all), 80, 8, 2, 8);
    }

    private void attentionBackward(String label, Tensor pos, int cache, int heads, int kvHeads, int headDim) {
        int n = (int) pos.size();
        Tensor q = t.uniform(-3, 3, n, heads * headDim), dOut = t.uniform(-1, 1, n, heads * headDim);
        Tensor k = t.uniform(-1, 1, cache, kvHeads * headDim), v = t.uniform(-1, 1, cache, kvHeads * headDim);
        Tensor[] start = {t.poisoned(n, heads * headDim), t.uniform(-1, 1, cache, kvHeads * headDim),
                t.uniform(-1, 1, cache, kvHeads * headDim)};
        compareAll("attentionBackward", label, FP32, start,
                (b, o) -> b.attentionBackward(o[0], o[1], o[2], dOut, q, k, v, pos, heads, kvHeads, headDim));
    }

    @Test
    void swigluBackward() {
        for (int n : new int[] {1, 3, 17, 64}) {
            for (int d : new int[] {1, 11, 2049}) {
                Tensor gate = t.uniform(-10, 10, n, d), up = t.uniform(-2, 2, n, d), dOut = t.uniform(-1, 1, n, d);
                String label = "n " + n + " d " + d;
                compareAll("swigluBackward", label, FP32, new Tensor[] {t.poisoned(n, d), t.poisoned(n, d)},
                        (b, o) -> b.swigluBackward(o[0], o[1], dOut, gate, up));
                // the gradients over their inputs, as a memory-tight MLP backward does
                compareAll("swigluBackward", label + " in place", FP32, new Tensor[] {gate, up},
                        (b, o) -> b.swigluBackward(o[0], o[1], dOut, o[0], o[1]));
            }
        }
    }

    @Test
    void crossEntropyBackward() {
        for (int n : new int[] {1, 3, 17, 64}) {
            for (int vocab : new int[] {2, 7, 513, 32000}) {
                Tensor logits = t.uniform(-10, 10, n, vocab), targets = t.anyOf(n, vocab), dLoss = t.uniform(0, 2, n);
                String label = "n " + n + " vocab " + vocab;
                compare("crossEntropyBackward", label + " dLoss", FP32, new int[] {n, vocab},
                        (b, d) -> b.crossEntropyBackward(d, logits, targets, dLoss, 0.5f));
                compareInPlace("crossEntropyBackward", label + " mean, in place", FP32, logits,
                        (b, io) -> b.crossEntropyBackward(io, io, targets, null, 1f / n));
            }
        }
    }

    @Test
    void lora() {
        // {n, k, m, r}: decode, partial row blocks, odd sizes, the largest rank, past the parallel thresholds
        int[][] shapes = {{1, 1, 1, 1}, {1, 64, 64, 16}, {7, 13, 5, 3}, {9, 100, 37, 8}, {33, 257, 129, 16},
                {300, 64, 172, 16}, {20, 48, 40, 256}, {0, 5, 4, 2}};
        for (int[] s : shapes) {
            int n = s[0], k = s[1], m = s[2], r = s[3];
            Tensor x = t.uniform(-1, 1, n, k), a = t.uniform(-1, 1, r, k), b = t.uniform(-1, 1, m, r);
            Tensor dy = t.uniform(-1, 1, n, m);
            float scale = 32f / r;
            // sums of k·r (forward), n·m (backward) terms of O(1), times scale
            double tol = FP32 * scale * Math.max(1, Math.sqrt(Math.max(k, Math.max(n, m)) * r / 64.0));
            String label = Arrays.toString(s);
            compareAll("loraForward", label + " out +=", tol, new Tensor[] {t.uniform(-1, 1, n, m)},
                    (be, o) -> be.loraForward(o[0], x, a, b, scale));
            compareAll("loraBackward", label + " dx, dA, dB +=", tol,
                    new Tensor[] {t.uniform(-1, 1, n, k), t.uniform(-1, 1, r, k), t.uniform(-1, 1, m, r)},
                    (be, o) -> be.loraBackward(o[0], o[1], o[2], dy, x, a, b, scale));
        }
    }

    /** The reference's generator gives Random123's known answers (tests/kat_vectors, "philox4x32 10"). */
    @Test
    void philoxKnownAnswers() {
        int[][] kat = {{0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
                {-1, -1, -1, -1, -1, -1, 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
                {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb,
                        0x5001e420, 0x24126ea1}};
        for (int[] v : kat) {
            assertArrayEquals(Arrays.copyOfRange(v, 6, 10), ReferenceBackend.philox(Arrays.copyOf(v, 4), v[4], v[5]));
        }
    }

    /**
     * Deterministic and Gumbel gates, alone and with another pass's gates (constant, and the straight-through
     * surrogate): both backends draw the same uniforms, so the gates agree exactly and the soft probabilities to
     * their last bit or so (Java's log and exp are not glibc's).
     */
    @Test
    void routerGates() {
        for (Tensors.GateCase c : t.gateCases(0, 1, 17, 300)) {
            int n = c.logits().rows();
            compareAll("routerGates", c.label(), 1e-7, new Tensor[] {t.poisoned(2, n), t.poisoned(2, n)},
                    (b, o) -> b.routerGates(o[0], o[1], c.logits(), c.bias(), c.noise(), c.tau(), c.hardGates(),
                            c.hardSoft()));
        }
    }

    @Test
    void routerGatesBackward() {
        for (int n : new int[] {0, 1, 17, 300}) {
            Tensor dGates = t.uniform(-1, 1, 2, n), soft = t.uniform(0, 1, 2, n);
            float gateGrad = (float) (t.random().nextDouble() * 0.2 - 0.1);
            // dBias sums n rows
            compareAll("routerGatesBackward", "n " + n, 1e-5, new Tensor[] {t.poisoned(n, 4), t.uniform(-1, 1, 4)},
                    (b, o) -> b.routerGatesBackward(o[0], o[1], dGates, soft, gateGrad, 2.5));
        }
    }

    /** Both compute in double, so exactly. */
    @Test
    void adamw() {
        for (int[] s : new int[][] {{1}, {7, 13}, {300, 129}}) {
            Tensor grad = t.uniform(-1, 1, s);
            for (double gradScale : new double[] {1, 0.37}) {
                AdamUpdate u = new AdamUpdate(1e-3 / (1 - 0.9 * 0.9), Math.sqrt(1 - 0.999 * 0.999), 0.9, 0.999, 1e-8,
                        1 - 1e-3 * 0.01, gradScale);
                compareAll("adamw", Arrays.toString(s) + " scale " + gradScale, 0,
                        new Tensor[] {t.uniform(-1, 1, s), t.uniform(-0.1f, 0.1f, s), t.uniform(0, 0.01f, s)},
                        (b, o) -> b.adamw(o[0], grad, o[1], o[2], u));
            }
        }
        // Subnormal moments, gradients and parameters (moments decaying under zero gradients end there) are kept,
        // not flushed to zero.
        float tiny = 1e-39f;
        Tensor grad = t.keep(Tensor.of(new float[] {0, 0, tiny / 10, 0}, 4));
        AdamUpdate u = new AdamUpdate(1e-3, 1, 0.9, 0.999, 1e-8, 1, 1);
        compareAll("adamw", "subnormals", 0, new Tensor[] {t.keep(Tensor.of(new float[] {0.5f, 0.5f, 0.5f, tiny}, 4)),
                        t.keep(Tensor.of(new float[] {tiny, 0, 0, 0}, 4)), t.keep(Tensor.of(new float[] {0, tiny, 0, 0}, 4))},
                (b, o) -> b.adamw(o[0], grad, o[1], o[2], u));
    }

    /** The same Philox bits and comparison: exactly; another offset draws another mask. */
    @Test
    void dropoutMask() {
        for (int[] s : new int[][] {{1}, {7, 13}, {300, 129}}) {
            for (double rate : new double[] {0, 0.1, 0.9}) {
                compareAll("dropoutMask", Arrays.toString(s) + " rate " + rate, 0, new Tensor[] {t.poisoned(s)},
                        (b, o) -> b.dropoutMask(o[0], rate, new Philox(0x1234_5678_9abcL, 42)));
            }
        }
        Tensor a = t.poisoned(64, 64), b = t.poisoned(64, 64);
        CPU.dropoutMask(a, 0.5, new Philox(7, 1));
        CPU.dropoutMask(b, 0.5, new Philox(7, 2));
        assertFalse(Arrays.equals(a.toFloatArray(), b.toFloatArray()), "another offset, another mask");
        assertThrows(IllegalArgumentException.class, () -> CPU.dropoutMask(a, 1.0, new Philox(7, 1)));
    }

    /** Both sum in double in index order, tensor after tensor: exactly. */
    @Test
    void sumOfSquares() {
        List<Tensor> xs = List.of(t.uniform(-3, 3, 1), t.uniform(-3, 3, 17, 33), t.uniform(-3, 3, 4099));
        assertEquals(REF.sumOfSquares(xs), CPU.sumOfSquares(xs));
        assertEquals(0.0, CPU.sumOfSquares(List.of()));
    }

    /**
     * Runs a call on both backends, each on its own copies of the outputs' starting contents (NaN for outputs
     * that are written, values for those added into, inputs for in-place calls), and compares every output.
     */
    private void compareAll(String op, String label, double tol, Tensor[] start, BiConsumer<Backend, Tensor[]> call) {
        Tensor[] want = new Tensor[start.length], got = new Tensor[start.length];
        for (int i = 0; i < start.length; i++) {
            want[i] = t.copy(start[i]);
            got[i] = t.copy(start[i]);
        }
        call.accept(REF, want);
        call.accept(CPU, got);
        for (int i = 0; i < start.length; i++) check(op, label + " output " + i, tol, want[i], got[i]);
    }

    /** Runs op into a fresh NaN-poisoned output of the given shape on both backends and compares. */
    private void compare(String op, String label, double tol, int[] outShape, BiConsumer<Backend, Tensor> call) {
        Tensor want = t.poisoned(outShape), got = t.poisoned(outShape);
        call.accept(REF, want);
        call.accept(CPU, got);
        check(op, label, tol, want, got);
    }

    /** Runs an in-place op on two copies of input, one per backend, and compares. */
    private void compareInPlace(String op, String label, double tol, Tensor input, BiConsumer<Backend, Tensor> call) {
        Tensor want = t.copy(input), got = t.copy(input);
        call.accept(REF, want);
        call.accept(CPU, got);
        check(op, label, tol, want, got);
    }

    private static void check(String op, String label, double tol, Tensor want, Tensor got) {
        Compare.check(op, label, tol, want, got, "cpu", ERRORS);
    }
}
