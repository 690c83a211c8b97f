package io.skipgpt.jmh;

import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tensor.Tensor;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The CPU kernels routed execution adds or leans on, at a LLaMA-2-7B layer shape and a 128-token prefill, next to
 * what they should approach: gathering the kept rows against copying as many contiguous rows, scatter-adding them
 * back against a dense add of as many rows, and the Q projection GEMM of the kept rows for scale. RMSNorm and
 * causal attention (MHA as LLaMA-2, GQA 4:1 as LLaMA-3) over all rows. Run with the jmh profile (see pom.xml).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class KernelBench {
    @Param("128")
    int rows;

    @Param("4096")
    int dim;

    /** Fraction of rows a routed sublayer keeps. */
    @Param("0.75")
    double keep;

    Backend backend;
    Tensor x, out, gathered, idx, norm, wq, q, k, v, kGqa, vGqa, att, pos;
    int kept;

    @Setup(Level.Trial)
    public void setUp() {
        backend = new CpuBackend();
        SplittableRandom rnd = new SplittableRandom(1);
        x = random(rnd, rows, dim);
        out = Tensor.f32(rows, dim);
        norm = random(rnd, dim);
        // every other row of a random selection: kept rows scattered over the whole batch, in order
        kept = (int) Math.round(keep * rows);
        idx = Tensor.i32(kept, 1);
        for (int i = 0, r = 0; i < rows && r < kept; i++) {
            if (rnd.nextDouble() < (double) (kept - r) / (rows - i)) idx.setInt(r++, i);
        }
        gathered = Tensor.f32(kept, dim);
        wq = random(rnd, dim, dim);
        q = random(rnd, rows, dim);
        k = random(rnd, rows, dim);
        v = random(rnd, rows, dim);
        kGqa = random(rnd, rows, dim / 4);
        vGqa = random(rnd, rows, dim / 4);
        att = Tensor.f32(rows, dim);
        pos = Tensor.i32(rows, 1);
        for (int i = 0; i < rows; i++) pos.setInt(i, i);
    }

    private static Tensor random(SplittableRandom rnd, int... shape) {
        Tensor t = Tensor.f32(shape);
        for (long i = 0; i < t.size(); i++) t.set(i, (float) (rnd.nextDouble() - 0.5));
        return t;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        for (Tensor t : new Tensor[] {x, out, gathered, idx, norm, wq, q, k, v, kGqa, vGqa, att, pos}) t.close();
        backend.close();
    }

    @Benchmark
    public Tensor gatherKeptRows() {
        backend.gatherRows(gathered, x, idx);
        return gathered;
    }

    /** The plain copy a gather should approach: as many rows, contiguous. */
    @Benchmark
    public Tensor copyAsManyRows() {
        gathered.copyFrom(x.rows(0, kept));
        return gathered;
    }

    @Benchmark
    public Tensor scatterAddKeptRows() {
        backend.scatterAddRows(out, gathered, idx);
        return out;
    }

    /** The dense residual add a scatter-add should approach: as many rows, contiguous. */
    @Benchmark
    public Tensor addAsManyRows() {
        backend.add(out.rows(0, kept), gathered);
        return out;
    }

    /** For scale: the Q projection of the kept rows, the smallest GEMM of a routed attention. */
    @Benchmark
    public Tensor qProjectionOfKeptRows() {
        Tensor qk = q.rows(0, kept);
        backend.matmul(qk, gathered, wq);
        return qk;
    }

    @Benchmark
    public Tensor rmsnorm() {
        backend.rmsnorm(out, x, norm, 1e-5f);
        return out;
    }

    @Benchmark
    public Tensor attentionMha() {
        backend.attention(att, q, k, v, pos, 32, 32, dim / 32);
        return att;
    }

    @Benchmark
    public Tensor attentionGqa() {
        backend.attention(att, q, kGqa, vGqa, pos, 32, 8, dim / 32);
        return att;
    }
}
