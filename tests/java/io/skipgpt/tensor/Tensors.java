package io.skipgpt.tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Tensors for tests: seeded random contents, NaN poison, copies; everything made here is closed by {@link #close}. */
final class Tensors implements AutoCloseable {
    private final Random random;
    private final List<Tensor> made = new ArrayList<>();

    Tensors(long seed) {
        random = new Random(seed);
    }

    Random random() {
        return random;
    }

    /** Uniform in [lo, hi), never exactly zero: a zero would hide an element the kernel forgot to read. */
    Tensor uniform(float lo, float hi, int... shape) {
        Tensor t = keep(Tensor.f32(shape));
        for (long i = 0; i < t.size(); i++) {
            float v;
            do {
                v = lo + (hi - lo) * random.nextFloat();
            } while (v == 0f);
            t.set(i, v);
        }
        return t;
    }

    /** The inputs of one {@link Backend#routerGates} call. */
    record GateCase(String label, Tensor logits, Tensor bias, Philox noise, double tau, Tensor hardGates,
                    Tensor hardSoft) {}

    /**
     * For each row count: deterministic and Gumbel gates, each alone, with another pass's gates (0 or 1), and with
     * those and their soft values (the straight-through surrogate).
     */
    List<GateCase> gateCases(int... rows) {
        List<GateCase> cases = new ArrayList<>();
        for (int n : rows) {
            for (boolean noisy : new boolean[] {false, true}) {
                for (int hard = 0; hard < 3; hard++) {
                    Tensor hardGates = keep(Tensor.f32(2, n));
                    for (long i = 0; i < hardGates.size(); i++) hardGates.set(i, random.nextBoolean() ? 1f : 0f);
                    Philox noise = noisy ? new Philox(random.nextLong(), random.nextLong()) : null;
                    cases.add(new GateCase(String.format("n %d noise %s hard %d", n, noisy, hard), uniform(-3, 3, n, 4),
                            uniform(-1, 1, 4, 1), noise, hard == 0 ? 3.7 : 1, hard > 0 ? hardGates : null,
                            hard == 2 ? uniform(0, 1, 2, n) : null));
                }
            }
        }
        return cases;
    }

    /** Every element NaN, so that an element a kernel does not write stays visibly unwritten. */
    Tensor poisoned(int... shape) {
        Tensor t = keep(Tensor.f32(shape));
        t.fill(Float.NaN);
        return t;
    }

    Tensor copy(Tensor t) {
        Tensor c = keep(t.dtype() == Tensor.DType.F32 ? Tensor.f32(t.shape()) : Tensor.i32(t.shape()));
        c.copyFrom(t);
        return c;
    }

    Tensor ints(int... values) {
        return keep(Tensor.ofInts(values, values.length));
    }

    /** count distinct values of [0, bound) in random order. */
    Tensor distinct(int count, int bound) {
        List<Integer> all = new ArrayList<>();
        for (int i = 0; i < bound; i++) all.add(i);
        java.util.Collections.shuffle(all, random);
        int[] v = new int[count];
        for (int i = 0; i < count; i++) v[i] = all.get(i);
        return ints(v);
    }

    /** count values of [0, bound), repeats allowed. */
    Tensor anyOf(int count, int bound) {
        int[] v = new int[count];
        for (int i = 0; i < count; i++) v[i] = random.nextInt(bound);
        return ints(v);
    }

    Tensor keep(Tensor t) {
        made.add(t);
        return t;
    }

    @Override
    public void close() {
        made.forEach(Tensor::close);
        made.clear();
    }
}
