package io.skipgpt.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** Both backends reject bad arguments before any kernel runs, with the same message naming op and shapes. */
class ShapeCheckTest {
    private static final List<Backend> BACKENDS = List.of(new ReferenceBackend(), new CpuBackend());

    private final Tensors t = new Tensors(7);

    @AfterEach
    void free() {
        t.close();
    }

    private interface Call {
        void on(Backend b);
    }

    private static void rejects(String message, Call call) {
        for (Backend b : BACKENDS) {
            Executable e = () -> call.on(b);
            assertEquals(message, assertThrows(IllegalArgumentException.class, e, b.name()).getMessage(), b.name());
        }
    }

    @Test
    void matmul() {
        Tensor x = t.uniform(-1, 1, 3, 64), w = t.uniform(-1, 1, 32, 60), w64 = t.uniform(-1, 1, 32, 64);
        rejects("matmul: x [3, 64] and w [32, 60] disagree on k", b -> b.matmul(t.poisoned(3, 32), x, w));
        rejects("matmul: out [3, 31] should be [3, 32] for x [3, 64] and w [32, 64]",
                b -> b.matmul(t.poisoned(3, 31), x, w64));
        rejects("matmul: out [4, 32] should be [3, 32] for x [3, 64] and w [32, 64]",
                b -> b.matmul(t.poisoned(4, 32), x, w64));
        Tensor big = t.uniform(-1, 1, 5, 4); // out = rows 2..4, x = rows 0..2: row 2 is shared
        rejects("matmul: out [3, 4] overlaps x [3, 4] in memory",
                b -> b.matmul(big.rows(2, 3), big.rows(0, 3), t.uniform(-1, 1, 4, 4)));
        rejects("matmul: x [3] should be F32, not I32", b -> b.matmul(t.poisoned(1, 32), t.ints(1, 2, 3), w64));
    }

    @Test
    void rmsnorm() {
        Tensor x = t.uniform(-1, 1, 3, 7);
        rejects("rmsnorm: weight [8] does not match the rows of x [3, 7]",
                b -> b.rmsnorm(t.poisoned(3, 7), x, t.uniform(1, 2, 8), 1e-5f));
        rejects("rmsnorm: out [3, 8] and x [3, 7] differ in shape",
                b -> b.rmsnorm(t.poisoned(3, 8), x, t.uniform(1, 2, 7), 1e-5f));
    }

    @Test
    void rope() {
        Tensor x = t.uniform(-1, 1, 2, 12);
        Tensor pos = t.ints(0, 1);
        rejects("rope: headDim 3 must be positive and even", b -> b.rope(x, pos, 3, 1e4f, RopeStyle.ADJACENT));
        rejects("rope: x [2, 12] is not a whole number of heads of 8", b -> b.rope(x, pos, 8, 1e4f, RopeStyle.ADJACENT));
        rejects("rope: positions [3] should have one entry per row of x [2, 12]",
                b -> b.rope(x, t.ints(0, 1, 2), 6, 1e4f, RopeStyle.ROTATE_HALF));
        rejects("rope: theta 0.0 must be positive", b -> b.rope(x, pos, 6, 0f, RopeStyle.ADJACENT));
    }

    @Test
    void attention() {
        // 4 query heads over 2 kv heads of 8; a cache of 5
        Tensor q = t.uniform(-1, 1, 2, 32), k = t.uniform(-1, 1, 5, 16), v = t.uniform(-1, 1, 5, 16);
        rejects("attention: nHeads 4 must be a positive multiple of nKvHeads 3, headDim 8 positive",
                b -> b.attention(t.poisoned(2, 32), q, k, v, t.ints(0, 1), 4, 3, 8));
        rejects("attention: q [2, 32] should have 2 x 8 columns",
                b -> b.attention(t.poisoned(2, 32), q, k, v, t.ints(0, 1), 2, 2, 8));
        rejects("attention: k [5, 16] should have 1 x 8 columns",
                b -> b.attention(t.poisoned(2, 32), q, k, v, t.ints(0, 1), 4, 1, 8));
        rejects("attention: v [4, 16] and k [5, 16] differ in shape",
                b -> b.attention(t.poisoned(2, 32), q, k, t.uniform(-1, 1, 4, 16), t.ints(0, 1), 4, 2, 8));
        rejects("attention: positions[1] = 5 is outside the cache rows of k [5, 16]",
                b -> b.attention(t.poisoned(2, 32), q, k, v, t.ints(4, 5), 4, 2, 8));
        rejects("attention: positions[0] = -1 is outside the cache rows of k [5, 16]",
                b -> b.attention(t.poisoned(2, 32), q, k, v, t.ints(-1, 0), 4, 2, 8));
        rejects("attention: positions [1] should have one entry per row of q [2, 32]",
                b -> b.attention(t.poisoned(2, 32), q, k, v, t.ints(0), 4, 2, 8));
        rejects("attention: out [2, 32] overlaps q [2, 32] in memory",
                b -> b.attention(q, q, k, v, t.ints(0, 1), 4, 2, 8));
        rejects("attention: query 1 reads cache rows 3..5, outside the rows of k [5, 16]",
                b -> b.attention(t.poisoned(2, 32), q, k, v, t.ints(0, 2), t.ints(0, 3), 4, 2, 8));
        rejects("attention: query 0 reads cache rows -1..-1, outside the rows of k [5, 16]",
                b -> b.attention(t.poisoned(2, 32), q, k, v, t.ints(0, 2), t.ints(-1, 0), 4, 2, 8));
        rejects("attention: keyStarts [1] should have one entry per query, like positions [2]",
                b -> b.attention(t.poisoned(2, 32), q, k, v, t.ints(0, 1), t.ints(0), 4, 2, 8));
    }

    @Test
    void elementwise() {
        Tensor a = t.uniform(-1, 1, 3, 5);
        rejects("swiglu: out [3, 5], gate [3, 5] and up [14] differ in size",
                b -> b.swiglu(t.poisoned(3, 5), a, t.uniform(-1, 1, 14)));
        rejects("add: dst [3, 5] and src [3, 4] differ in size", b -> b.add(a, t.uniform(-1, 1, 3, 4)));
        rejects("softmax: x [2] should be F32, not I32", b -> b.softmax(t.ints(1, 2)));
    }

    @Test
    void rows() {
        Tensor table = t.uniform(-1, 1, 10, 4);
        rejects("embedding: ids[2] = 10 is outside the rows of table [10, 4]",
                b -> b.embedding(t.poisoned(3, 4), table, t.ints(0, 9, 10)));
        rejects("embedding: out [3, 5] should be [3, 4] for ids [3] and table [10, 4]",
                b -> b.embedding(t.poisoned(3, 5), table, t.ints(0, 1, 2)));
        rejects("gatherRows: idx[0] = -1 is outside the rows of src [10, 4]",
                b -> b.gatherRows(t.poisoned(1, 4), table, t.ints(-1)));
        rejects("gatherRows: out [2, 4] should be [3, 4] for idx [3] and src [10, 4]",
                b -> b.gatherRows(t.poisoned(2, 4), table, t.ints(0, 1, 2)));
        rejects("scatterAddRows: idx [3] repeats row 7", b -> b.scatterAddRows(table, t.uniform(-1, 1, 3, 4), t.ints(7, 1, 7)));
        rejects("scatterAddRows: idx[1] = 10 is outside the rows of dst [10, 4]",
                b -> b.scatterAddRows(table, t.uniform(-1, 1, 2, 4), t.ints(3, 10)));
        rejects("scatterAddRows: src [2, 4] should be [3, 4] for idx [3] and dst [10, 4]",
                b -> b.scatterAddRows(table, t.uniform(-1, 1, 2, 4), t.ints(0, 1, 2)));
        rejects("scatterRows: idx [3] repeats row 7", b -> b.scatterRows(table, t.uniform(-1, 1, 3, 4), t.ints(7, 1, 7)));
        rejects("scatterRows: idx[1] = 10 is outside the rows of dst [10, 4]",
                b -> b.scatterRows(table, t.uniform(-1, 1, 2, 4), t.ints(3, 10)));
    }

    @Test
    void crossEntropy() {
        Tensor logits = t.uniform(-1, 1, 2, 7);
        rejects("crossEntropy: targets[1] = 7 is outside the columns of logits [2, 7]",
                b -> b.crossEntropy(t.poisoned(2), logits, t.ints(0, 7)));
        rejects("crossEntropy: loss [3] and targets [2] should have one entry per row of logits [2, 7]",
                b -> b.crossEntropy(t.poisoned(3), logits, t.ints(0, 1)));
    }

    @Test
    void gating() {
        Tensor a = t.uniform(-1, 1, 3, 5);
        rejects("rowDot: a [3, 5] and b [3, 4] differ in shape", b -> b.rowDot(t.poisoned(3), a, t.uniform(-1, 1, 3, 4)));
        rejects("rowDot: out [2] should have one entry per row of a [3, 5]", b -> b.rowDot(t.poisoned(2), a, a));
        rejects("scaleRows: s [5] should have one entry per row of x [3, 5]", b -> b.scaleRows(a, t.uniform(1, 2, 5)));
        Tensor firstThree = a.reshape(15, 1).rows(0, 3).reshape(3); // a's own first elements
        rejects("scaleRows: x [3, 5] overlaps s [3] in memory", b -> b.scaleRows(a, firstThree));
    }

    @Test
    void matmulBackward() {
        Tensor x = t.uniform(-1, 1, 3, 64), w = t.uniform(-1, 1, 32, 64), dy = t.uniform(-1, 1, 3, 32);
        rejects("matmulBackward: dy [3, 31] should be [3, 32] for x [3, 64] and w [32, 64]",
                b -> b.matmulBackward(t.poisoned(3, 64), null, t.uniform(-1, 1, 3, 31), x, w, false));
        rejects("matmulBackward: dx [3, 63] and x [3, 64] differ in shape",
                b -> b.matmulBackward(t.poisoned(3, 63), null, dy, x, w, false));
        rejects("matmulBackward: dw [64, 32] and w [32, 64] differ in shape",
                b -> b.matmulBackward(null, t.poisoned(64, 32), dy, x, w, false));
        rejects("matmulBackward: dx [3, 64] overlaps x [3, 64] in memory", b -> b.matmulBackward(x, null, dy, x, w, true));
    }

    @Test
    void rmsnormBackward() {
        Tensor x = t.uniform(-1, 1, 3, 7), dy = t.uniform(-1, 1, 3, 7), w = t.uniform(1, 2, 7);
        rejects("rmsnormBackward: dWeight [8] and weight [7] differ in size",
                b -> b.rmsnormBackward(t.poisoned(3, 7), t.poisoned(8), dy, x, w, 1e-5f));
        rejects("rmsnormBackward: dy [2, 7] and x [3, 7] differ in shape",
                b -> b.rmsnormBackward(t.poisoned(3, 7), null, t.uniform(-1, 1, 2, 7), x, w, 1e-5f));
        rejects("rmsnormBackward: dx [3, 7] overlaps dy [3, 7] in memory", b -> b.rmsnormBackward(dy, null, dy, x, w, 1e-5f));
    }

    @Test
    void attentionBackward() {
        // 4 query heads over 2 kv heads of 8; a cache of 5
        Tensor q = t.uniform(-1, 1, 2, 32), k = t.uniform(-1, 1, 5, 16), v = t.uniform(-1, 1, 5, 16);
        Tensor dOut = t.uniform(-1, 1, 2, 32), pos = t.ints(4, 1);
        rejects("attentionBackward: dk [4, 16] and k [5, 16] differ in shape",
                b -> b.attentionBackward(t.poisoned(2, 32), t.poisoned(4, 16), t.poisoned(5, 16), dOut, q, k, v, pos, 4, 2, 8));
        rejects("attentionBackward: dOut [2, 16] and q [2, 32] differ in shape",
                b -> b.attentionBackward(t.poisoned(2, 32), t.poisoned(5, 16), t.poisoned(5, 16), t.uniform(-1, 1, 2, 16),
                        q, k, v, pos, 4, 2, 8));
        rejects("attentionBackward: positions[0] = 5 is outside the cache rows of k [5, 16]",
                b -> b.attentionBackward(t.poisoned(2, 32), t.poisoned(5, 16), t.poisoned(5, 16), dOut, q, k, v,
                        t.ints(5, 0), 4, 2, 8));
        Tensor dkv = t.poisoned(5, 16);
        rejects("attentionBackward: dk [5, 16] overlaps dv [5, 16] in memory",
                b -> b.attentionBackward(t.poisoned(2, 32), dkv, dkv, dOut, q, k, v, pos, 4, 2, 8));
    }

    @Test
    void elementwiseBackward() {
        Tensor a = t.uniform(-1, 1, 3, 5);
        rejects("swigluBackward: dGate [3, 5], dUp [3, 5], dOut [3, 5], gate [3, 5] and up [14] differ in size",
                b -> b.swigluBackward(t.poisoned(3, 5), t.poisoned(3, 5), a, a, t.uniform(-1, 1, 14)));
        Tensor d = t.poisoned(3, 5);
        rejects("swigluBackward: dGate [3, 5] overlaps dUp [3, 5] in memory", b -> b.swigluBackward(d, d, a, a, a));
        rejects("ropeBackward: dx [2, 12] is not a whole number of heads of 8",
                b -> b.ropeBackward(t.uniform(-1, 1, 2, 12), t.ints(0, 1), 8, 1e4f, RopeStyle.ADJACENT));
    }

    @Test
    void crossEntropyBackward() {
        Tensor logits = t.uniform(-1, 1, 2, 7);
        rejects("crossEntropyBackward: targets[1] = 7 is outside the columns of logits [2, 7]",
                b -> b.crossEntropyBackward(t.poisoned(2, 7), logits, t.ints(0, 7), null, 1f));
        rejects("crossEntropyBackward: dLoss [3] should have one entry per row of logits [2, 7]",
                b -> b.crossEntropyBackward(t.poisoned(2, 7), logits, t.ints(0, 1), t.uniform(1, 2, 3), 1f));
        rejects("crossEntropyBackward: dLogits [2, 6] and logits [2, 7] differ in shape",
                b -> b.crossEntropyBackward(t.poisoned(2, 6), logits, t.ints(0, 1), null, 1f));
    }

    /**
     * BF16 is a device backend's weight storage: host backends reject it wherever it appears; the device checks
     * take it as matmul's w and for matmulBackward's dx only, never as an activation. Device tensors here are
     * stand-ins over host memory (distinct addresses for the overlap checks) that nothing dereferences.
     */
    @Test
    void bf16IsADeviceWeightOnly() {
        Tensor w16 = onCuda(Tensor.DType.BF16, 32, 64);
        rejects("matmul: w [32, 64] should be F32, not BF16", b -> b.matmul(t.poisoned(3, 32), t.uniform(-1, 1, 3, 64), w16));
        rejects("matmulBackward: w [32, 64] should be F32, not BF16",
                b -> b.matmulBackward(t.poisoned(3, 64), null, t.uniform(-1, 1, 3, 32), t.uniform(-1, 1, 3, 64), w16, false));
        rejects("softmax: x [32, 64] should be F32, not BF16", b -> b.softmax(w16));
        rejects("copy: dst [32, 64] F32 and src [32, 64] BF16 differ in dtype or size (BF16 is device-only weight "
                + "storage)", b -> b.copy(t.poisoned(32, 64), w16));

        OpChecks cuda = new OpChecks(Device.CUDA);
        Tensor x = onCuda(Tensor.DType.F32, 3, 64), dy = onCuda(Tensor.DType.F32, 3, 32);
        Tensor out = onCuda(Tensor.DType.F32, 3, 32), dx = onCuda(Tensor.DType.F32, 3, 64);
        cuda.matmul(out, x, w16);
        cuda.matmul(out.rows(0, 1), x.rows(2, 1), w16);
        cuda.matmulBackward(dx, null, dy, x, w16);
        assertEquals("matmulBackward: w [32, 64] is BF16, frozen storage without a gradient: pass dw = null, or keep "
                + "a trained weight in F32", assertThrows(IllegalArgumentException.class,
                () -> cuda.matmulBackward(dx, onCuda(Tensor.DType.F32, 32, 64), dy, x, w16)).getMessage());
        assertEquals("matmul: x [32, 64] should be F32, not BF16",
                assertThrows(IllegalArgumentException.class, () -> cuda.matmul(out, w16, w16)).getMessage());
        assertEquals("uploadWeight: w [32, 64] should be F32, not BF16",
                assertThrows(IllegalArgumentException.class, () -> cuda.uploadWeight(w16)).getMessage());
    }

    /** A stand-in device tensor over fresh host memory: an address of its own, which nothing dereferences. */
    private Tensor onCuda(Tensor.DType dtype, int... shape) {
        Tensor memory = t.keep(Tensor.f32(shape)); // 4 bytes an element: room for any dtype
        return Tensor.onDevice(dtype, shape, Device.CUDA, memory.pointer(), () -> {});
    }

    @Test
    void lora() {
        Tensor x = t.uniform(-1, 1, 3, 8), a = t.uniform(-1, 1, 2, 8), b = t.uniform(-1, 1, 5, 2);
        rejects("loraForward: x [3, 8] and a [2, 7] disagree on k",
                be -> be.loraForward(t.poisoned(3, 5), x, t.uniform(-1, 1, 2, 7), b, 2f));
        rejects("loraForward: b [5, 3] should have 2 columns, the rank of a [2, 8]",
                be -> be.loraForward(t.poisoned(3, 5), x, a, t.uniform(-1, 1, 5, 3), 2f));
        rejects("loraForward: out [3, 4] should be [3, 5] for x [3, 8] and b [5, 2]",
                be -> be.loraForward(t.poisoned(3, 4), x, a, b, 2f));
        rejects("loraForward: rank 257 of a [257, 8] must be in [1, 256]",
                be -> be.loraForward(t.poisoned(3, 5), x, t.uniform(-1, 1, 257, 8), t.uniform(-1, 1, 5, 257), 2f));
        Tensor dy = t.uniform(-1, 1, 3, 5);
        rejects("loraBackward: dB [2, 5] and b [5, 2] differ in shape",
                be -> be.loraBackward(t.poisoned(3, 8), t.poisoned(2, 8), t.poisoned(2, 5), dy, x, a, b, 2f));
        rejects("loraBackward: dy [3, 4] should be [3, 5] for x [3, 8] and b [5, 2]",
                be -> be.loraBackward(t.poisoned(3, 8), t.poisoned(2, 8), t.poisoned(5, 2), t.uniform(-1, 1, 3, 4), x, a, b, 2f));
        rejects("loraBackward: dx [3, 8] overlaps x [3, 8] in memory",
                be -> be.loraBackward(x, t.poisoned(2, 8), t.poisoned(5, 2), dy, x, a, b, 2f));
    }

    @Test
    void training() {
        Tensor z = t.uniform(-1, 1, 3, 4), bias = t.uniform(-1, 1, 4), soft = t.uniform(0, 1, 2, 3);
        rejects("routerGates: logits [3, 5] should have 4 columns",
                b -> b.routerGates(t.poisoned(2, 3), t.poisoned(2, 3), t.uniform(-1, 1, 3, 5), bias, null, 1, null, null));
        rejects("routerGates: soft [3, 2] should be [2, 3] for logits [3, 4]",
                b -> b.routerGates(t.poisoned(2, 3), t.poisoned(3, 2), z, bias, null, 1, null, null));
        rejects("routerGates: tau 0.0 must be positive and finite",
                b -> b.routerGates(t.poisoned(2, 3), t.poisoned(2, 3), z, bias, null, 0, null, null));
        rejects("routerGates: hardSoft needs hardGates",
                b -> b.routerGates(t.poisoned(2, 3), t.poisoned(2, 3), z, bias, null, 1, null, soft));
        rejects("routerGates: gates [2, 3] overlaps hardGates [2, 3] in memory",
                b -> b.routerGates(soft, t.poisoned(2, 3), z, bias, null, 1, soft, null));
        rejects("routerGatesBackward: dBias [5] should have 4 elements",
                b -> b.routerGatesBackward(t.poisoned(3, 4), t.poisoned(5), t.uniform(-1, 1, 2, 3), soft, 0f, 1));
        Tensor p = t.uniform(-1, 1, 2, 3);
        AdamUpdate u = new AdamUpdate(1e-3, 1, 0.9, 0.999, 1e-8, 1, 1);
        rejects("adamw: param [2, 3], grad [3, 2], m [2, 3] and v [2, 3] differ in shape",
                b -> b.adamw(p, t.uniform(-1, 1, 3, 2), t.poisoned(2, 3), t.poisoned(2, 3), u));
        rejects("adamw: param [2, 3] overlaps m [2, 3] in memory",
                b -> b.adamw(p, t.uniform(-1, 1, 2, 3), p, t.poisoned(2, 3), u));
        rejects("sumOfSquares: xs[1] [2] should be F32, not I32", b -> b.sumOfSquares(List.of(p, t.ints(1, 2))));
    }
}
