package io.skipgpt.tensor;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Every backward op of {@link ReferenceBackend} against central finite differences of its forward op, on small
 * shapes. The loss is L = Σ out·R for a fixed random R, so R is the output gradient the backward op is given.
 * Each input element in turn moves to the floats nearest x ± 1e-3, L is evaluated in double from the float
 * outputs, and (L+ − L−) / (x+ − x−) must match the analytic gradient g within 1e-2 · max(|g|, max|g| / 10):
 * relative per element, with a floor for elements near zero, where the ~1e-4 noise of float outputs divided
 * by 2e-3 dominates. Inputs are drawn so that L is smooth (no saturated softmax, no near-zero norms). Gradients
 * that the op adds into start from random values, and the analytic gradient is what the op added.
 */
class GradientCheckTest {
    private static final Backend REF = new ReferenceBackend();
    private static final double EPS = 1e-3, RTOL = 1e-2, FLOOR = 0.1;
    /** op -> largest error seen, in units of the tolerance's denominator */
    private static final Map<String, Double> ERRORS = new TreeMap<>();

    private final Tensors t = new Tensors(20240614L);

    @AfterEach
    void free() {
        t.close();
    }

    @AfterAll
    static void report() {
        ERRORS.forEach((op, e) -> System.out.printf("OK %-24s finite differences, max rel err %.2e (tol %.0e)%n", op, e, RTOL));
    }

    @Test
    void matmul() {
        Tensor x = t.uniform(-1, 1, 3, 5), w = t.uniform(-1, 1, 4, 5), r = t.uniform(-1, 1, 3, 4), out = t.poisoned(3, 4);
        DoubleSupplier loss = () -> {
            REF.matmul(out, x, w);
            return dot(out, r);
        };
        Tensor dx = t.poisoned(3, 5), dw = added(t.uniform(-1, 1, 4, 5), o -> REF.matmulBackward(null, o, r, x, w, false));
        REF.matmulBackward(dx, null, r, x, w, false);
        check("matmulBackward", "dx", x, dx, loss);
        check("matmulBackward", "dw +=", w, dw, loss);
        check("matmulBackward", "dx +=", x, added(t.uniform(-1, 1, 3, 5), o -> REF.matmulBackward(o, null, r, x, w, true)), loss);
    }

    @Test
    void rmsnorm() {
        Tensor x = t.uniform(-2, 2, 3, 6), weight = t.uniform(0.5f, 1.5f, 6), r = t.uniform(-1, 1, 3, 6);
        Tensor out = t.poisoned(3, 6);
        DoubleSupplier loss = () -> {
            REF.rmsnorm(out, x, weight, 1e-5f);
            return dot(out, r);
        };
        Tensor dx = t.poisoned(3, 6);
        Tensor dWeight = added(t.uniform(-1, 1, 6), o -> REF.rmsnormBackward(dx, o, r, x, weight, 1e-5f));
        check("rmsnormBackward", "dx", x, dx, loss);
        check("rmsnormBackward", "dWeight +=", weight, dWeight, loss);
    }

    @Test
    void rope() {
        Tensor pos = t.ints(7, 0, 3, 1000);
        for (RopeStyle style : RopeStyle.values()) {
            Tensor x = t.uniform(-1, 1, 4, 2 * 6), r = t.uniform(-1, 1, 4, 2 * 6), work = t.poisoned(4, 2 * 6);
            DoubleSupplier loss = () -> {
                work.copyFrom(x);
                REF.rope(work, pos, 6, 10000f, style);
                return dot(work, r);
            };
            Tensor dx = t.copy(r);
            REF.ropeBackward(dx, pos, 6, 10000f, style);
            check("ropeBackward", style.toString(), x, dx, loss);
        }
    }

    @Test
    void attention() {
        // 4 query heads over 2 kv heads; queries out of order at scattered positions, one repeated; cache row 9
        // is past every position and must get no gradient
        int heads = 4, kvHeads = 2, headDim = 4, cache = 10;
        Tensor pos = t.ints(5, 1, 8, 3, 3);
        int n = (int) pos.size();
        Tensor q = t.uniform(-1, 1, n, heads * headDim), k = t.uniform(-1, 1, cache, kvHeads * headDim);
        Tensor v = t.uniform(-1, 1, cache, kvHeads * headDim), r = t.uniform(-1, 1, n, heads * headDim);
        Tensor out = t.poisoned(n, heads * headDim);
        DoubleSupplier loss = () -> {
            REF.attention(out, q, k, v, pos, heads, kvHeads, headDim);
            return dot(out, r);
        };
        Tensor dq = t.poisoned(n, heads * headDim), dkStart = t.uniform(-1, 1, cache, kvHeads * headDim);
        Tensor dk = t.copy(dkStart), dv = t.uniform(-1, 1, cache, kvHeads * headDim), dvStart = t.copy(dv);
        REF.attentionBackward(dq, dk, dv, r, q, k, v, pos, heads, kvHeads, headDim);
        check("attentionBackward", "dq", q, dq, loss);
        check("attentionBackward", "dk +=", k, minus(dk, dkStart), loss);
        check("attentionBackward", "dv +=", v, minus(dv, dvStart), loss);
    }

    @Test
    void swiglu() {
        Tensor gate = t.uniform(-4, 4, 2, 5), up = t.uniform(-1, 1, 2, 5), r = t.uniform(-1, 1, 2, 5);
        Tensor out = t.poisoned(2, 5);
        DoubleSupplier loss = () -> {
            REF.swiglu(out, gate, up);
            return dot(out, r);
        };
        Tensor dGate = t.poisoned(2, 5), dUp = t.poisoned(2, 5);
        REF.swigluBackward(dGate, dUp, r, gate, up);
        check("swigluBackward", "dGate", gate, dGate, loss);
        check("swigluBackward", "dUp", up, dUp, loss);
    }

    @Test
    void crossEntropy() {
        Tensor logits = t.uniform(-3, 3, 3, 7), targets = t.ints(6, 0, 3), dLoss = t.uniform(0.5f, 1.5f, 3);
        Tensor out = t.poisoned(3);
        float scale = 0.37f;
        DoubleSupplier weighted = () -> {
            REF.crossEntropy(out, logits, targets);
            return scale * dot(out, dLoss);
        };
        Tensor dLogits = t.poisoned(3, 7);
        REF.crossEntropyBackward(dLogits, logits, targets, dLoss, scale);
        check("crossEntropyBackward", "dLoss, scale", logits, dLogits, weighted);
        Tensor ones = t.keep(Tensor.f32(3));
        ones.fill(1f);
        DoubleSupplier mean = () -> {
            REF.crossEntropy(out, logits, targets);
            return dot(out, ones) / 3;
        };
        Tensor dMean = t.poisoned(3, 7);
        REF.crossEntropyBackward(dMean, logits, targets, null, 1f / 3);
        check("crossEntropyBackward", "mean", logits, dMean, mean);
    }

    /** Backward of rowDot, out[i] = a_i·b_i, as Backend documents it: da = scaleRows(b, dOut). */
    @Test
    void rowDot() {
        Tensor a = t.uniform(-1, 1, 3, 5), b = t.uniform(-1, 1, 3, 5), r = t.uniform(-1, 1, 3), out = t.poisoned(3);
        DoubleSupplier loss = () -> {
            REF.rowDot(out, a, b);
            return dot(out, r);
        };
        Tensor da = t.copy(b), db = t.copy(a);
        REF.scaleRows(da, r);
        REF.scaleRows(db, r);
        check("rowDot", "da", a, da, loss);
        check("rowDot", "db", b, db, loss);
    }

    /** Backward of scaleRows, y_i = x_i·s_i, as Backend documents it: ds = rowDot(dy, x), dx = scaleRows(dy, s). */
    @Test
    void scaleRows() {
        Tensor x = t.uniform(-1, 1, 3, 5), s = t.uniform(-2, 2, 3), r = t.uniform(-1, 1, 3, 5), work = t.poisoned(3, 5);
        DoubleSupplier loss = () -> {
            work.copyFrom(x);
            REF.scaleRows(work, s);
            return dot(work, r);
        };
        Tensor ds = t.poisoned(3), dx = t.copy(r);
        REF.rowDot(ds, r, x);
        REF.scaleRows(dx, s);
        check("scaleRows", "dx", x, dx, loss);
        check("scaleRows", "ds", s, ds, loss);
    }

    @Test
    void lora() {
        int n = 3, k = 5, m = 4, r = 2;
        float scale = 1.5f;
        Tensor x = t.uniform(-1, 1, n, k), a = t.uniform(-1, 1, r, k), b = t.uniform(-1, 1, m, r);
        Tensor r0 = t.uniform(-1, 1, n, m), out = t.poisoned(n, m), base = t.uniform(-1, 1, n, m);
        DoubleSupplier loss = () -> {
            out.copyFrom(base);
            REF.loraForward(out, x, a, b, scale);
            return dot(out, r0);
        };
        Tensor[] grads = {t.uniform(-1, 1, n, k), t.uniform(-1, 1, r, k), t.uniform(-1, 1, m, r)};
        Tensor[] before = {t.copy(grads[0]), t.copy(grads[1]), t.copy(grads[2])};
        REF.loraBackward(grads[0], grads[1], grads[2], r0, x, a, b, scale);
        check("loraBackward", "dx +=", x, minus(grads[0], before[0]), loss);
        check("loraBackward", "dA +=", a, minus(grads[1], before[1]), loss);
        check("loraBackward", "dB +=", b, minus(grads[2], before[2]), loss);
    }

    /** What op added into a gradient that starts as start: runs op on start, returns the difference. */
    private Tensor added(Tensor start, Consumer<Tensor> op) {
        Tensor before = t.copy(start);
        op.accept(start);
        return minus(start, before);
    }

    private Tensor minus(Tensor a, Tensor b) {
        Tensor d = t.keep(Tensor.f32(a.shape()));
        for (long i = 0; i < a.size(); i++) d.set(i, a.get(i) - b.get(i));
        return d;
    }

    private static double dot(Tensor a, Tensor b) {
        double sum = 0;
        for (long i = 0; i < a.size(); i++) sum += (double) a.get(i) * b.get(i);
        return sum;
    }

    /** grad = dL/dinput, element by element, against central differences of loss over input. */
    private static void check(String op, String what, Tensor input, Tensor grad, DoubleSupplier loss) {
        double largest = 0;
        for (long i = 0; i < grad.size(); i++) {
            if (Float.isNaN(grad.get(i))) fail(op + " " + what + ": element " + i + " left unwritten");
            largest = Math.max(largest, Math.abs(grad.get(i)));
        }
        double worst = 0;
        for (long i = 0; i < input.size(); i++) {
            float x = input.get(i), up = (float) (x + EPS), down = (float) (x - EPS);
            input.set(i, up);
            double lossUp = loss.getAsDouble();
            input.set(i, down);
            double lossDown = loss.getAsDouble();
            input.set(i, x);
            double numeric = (lossUp - lossDown) / ((double) up - down), analytic = grad.get(i);
            double err = Math.abs(numeric - analytic) / Math.max(Math.abs(analytic), FLOOR * largest);
            if (err > RTOL) {
                fail(String.format("%s %s: element %d is %.6g, finite differences say %.6g (rel err %.2e > %.0e)",
                        op, what, i, analytic, numeric, err, RTOL));
            }
            worst = Math.max(worst, err);
        }
        ERRORS.merge(op, worst, Math::max);
    }
}
