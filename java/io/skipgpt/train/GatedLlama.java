package io.skipgpt.train;

import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.Projection;
import io.skipgpt.routing.Routers;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.RopeStyle;
import io.skipgpt.tensor.Tensor;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * The frozen LLaMA with SkipGPT gates as training runs it: masked-dense (every module computed for every token,
 * since the gate's gradient {@code dL/dg = <dL/dh, f(x)>} is needed even where g = 0), gates drawn by hard
 * Gumbel-softmax with a straight-through gradient, and a backward pass through the whole model into the
 * routers. One sequence per {@link Tape}; the base weights never receive gradients.
 *
 * <p>Per layer: {@code z = x·Wᵣᵀ + b} (four logits), {@code a = z + Gumbel}, forward gate
 * {@code g = [a_exec > a_skip]}, backward through {@code y = sigmoid((a_exec − a_skip)/tau)}:
 * {@code dz_exec = dg·y(1−y)/tau = −dz_skip}. Then {@code h = x + g_att·Attn(norm(x))},
 * {@code out = h + g_mlp·MLP(norm(h))}.
 *
 * <p>Both stages run it. Stage 1 trains the routers. Stage 2 adds a LoRA adapter on some projections —
 * {@code y = x·Wᵀ + scale·B·A·dropout(x)}, dropout drawn per element and target — and trains it with the routers
 * frozen: their decisions are constants of the adapter's loss, so no gradient flows through the router logits.
 * (Autograd through the frozen routers' straight-through path would let the adapter buy quality by moving the
 * residual stream toward "execute": on stories260K at 25% that drifted the realised sparsity to 18%.) Without
 * noise the gates are deterministic ({@code z_exec > z_skip}); without routers every gate is 1.
 */
final class GatedLlama {
    private final LlamaConfig c;
    private final LlamaWeights w;
    private final Backend backend;
    private final Routers routers;
    private final LoraAdapter lora;

    /** Stage 1: routers, no adapter. */
    GatedLlama(LlamaConfig config, LlamaWeights weights, Backend backend, Routers routers) {
        this(config, weights, backend, routers, null);
    }

    /** @param routers null: every gate open (a dense model); @param lora null: stage 1 (no adapter, routers train) */
    GatedLlama(LlamaConfig config, LlamaWeights weights, Backend backend, Routers routers, LoraAdapter lora) {
        this.c = config;
        this.w = weights;
        this.backend = backend;
        this.routers = routers;
        this.lora = lora;
    }

    /** Activations of one layer, kept for the backward pass. Shapes for n rows. */
    private static final class LayerTape {
        Tensor x; // [n, d] layer input
        Tensor z; // [n, 4] router logits (before noise)
        Tensor y; // [n, 2] soft execute probabilities, attention and MLP (straight-through path)
        Tensor gAtt, gMlp; // [n, 1] hard gates, 0 or 1
        Tensor xbA; // [n, d] norm_att(x)
        Tensor q, k, v; // [n, qd], [n, kvd], [n, kvd] after RoPE (k, v form this sequence's whole cache)
        Tensor att; // [n, qd] attention output before O
        Tensor o; // [n, d] attention module output f_att(x)
        Tensor h; // [n, d] x + g_att·o
        Tensor xbM; // [n, d] norm_mlp(h)
        Tensor gate, up; // [n, hidden] pre-activation projections
        Tensor act; // [n, hidden] silu(gate)·up
        Tensor m; // [n, d] MLP module output f_mlp(h)
        // Per adapted projection under dropout: {mask [n, in] of 0 and 1/(1−p), the adapter's input x·mask}.
        final Map<Projection, Tensor[]> dropped = new EnumMap<>(Projection.class);

        void close() {
            List.of(x, z, y, gAtt, gMlp, xbA, q, k, v, att, o, h, xbM, gate, up, act, m).forEach(Tensor::close);
            for (Tensor[] pair : dropped.values()) for (Tensor t : pair) t.close();
        }
    }

    /** One sequence's forward pass: inputs, targets, every layer's activations, logits and per-token losses. */
    final class Tape implements AutoCloseable {
        final int n;
        final Tensor pos; // [n, 1]
        final Tensor targets; // [n, 1]
        final List<LayerTape> layers = new ArrayList<>();
        Tensor xOut; // [n, d] final residual
        Tensor logits; // [n, vocab]
        Tensor losses; // [n, 1]
        final double tau;
        final boolean straightThrough; // stage 1, gates sampled: the backward goes through their soft probabilities

        Tape(int n, double tau, boolean straightThrough) {
            this.n = n;
            this.tau = tau;
            this.straightThrough = straightThrough;
            this.pos = Tensor.i32(n, 1);
            this.targets = Tensor.i32(n, 1);
        }

        /** Sum of the hard gates over this sequence's tokens, layers and both module kinds. */
        double gateSum() {
            double s = 0;
            for (LayerTape l : layers) {
                for (int i = 0; i < n; i++) s += l.gAtt.get(i) + l.gMlp.get(i);
            }
            return s;
        }

        double nllSum() {
            double s = 0;
            for (int i = 0; i < n; i++) s += losses.get(i);
            return s;
        }

        /** Execute rates of layer l over this sequence: {attention, MLP} counts. */
        long[] keptCounts(int l) {
            long a = 0, b = 0;
            for (int i = 0; i < n; i++) {
                a += (long) layers.get(l).gAtt.get(i);
                b += (long) layers.get(l).gMlp.get(i);
            }
            return new long[] {a, b};
        }

        @Override
        public void close() {
            pos.close();
            targets.close();
            for (LayerTape l : layers) l.close();
            if (xOut != null) xOut.close();
            if (logits != null) logits.close();
            if (losses != null) losses.close();
        }
    }

    /**
     * Forward pass of one sequence from an empty cache: gates sampled with {@code noise} at temperature
     * {@code tau}; logits and per-token cross-entropy against {@code targets}.
     */
    Tape forward(int[] inputs, int[] targets, Rng noise, double tau) {
        return forward(inputs, targets, noise, tau, null, null);
    }

    /** Stage 1's surrogate forward pass: see {@link #forward(int[], int[], Rng, double, Rng, Tape)}. */
    Tape forward(int[] inputs, int[] targets, Rng noise, double tau, Tape hardGatesOf) {
        return forward(inputs, targets, noise, tau, null, hardGatesOf);
    }

    /**
     * Forward pass of one sequence from an empty cache: gates sampled with {@code noise} at temperature {@code tau}
     * (deterministic when noise is null), adapter dropout masks drawn from {@code dropout} (none when null), logits
     * and per-token cross-entropy against {@code targets}.
     *
     * <p>With {@code hardGatesOf} (a tape of the same sequence, noise and dropout), it is the function whose
     * gradient {@link #backward} computes, so that finite differences of it check the backward. In stage 1 that is
     * the straight-through estimator: each gate is {@code g_hard + y − y_hard} — the hard value at the reference
     * point, moving with the soft probability y around it. In stage 2 each gate is {@code g_hard}, a constant.
     */
    Tape forward(int[] inputs, int[] targets, Rng noise, double tau, Rng dropout, Tape hardGatesOf) {
        int n = inputs.length;
        if (targets.length != n) throw new IllegalArgumentException("inputs and targets differ in length");
        int d = c.dim(), qd = c.nHeads() * c.headDim(), kvd = c.kvDim(), hid = c.hiddenDim();
        Tape t = new Tape(n, tau, routers != null && noise != null && lora == null);
        try (Tensor ids = Tensor.ofInts(inputs, n, 1)) {
            for (int i = 0; i < n; i++) {
                t.pos.setInt(i, i);
                t.targets.setInt(i, targets[i]);
            }
            Tensor x = Tensor.f32(n, d);
            backend.embedding(x, w.tokenEmbedding(), ids);
            for (int l = 0; l < c.nLayers(); l++) {
                LlamaWeights.Layer lw = w.layers().get(l);
                LayerTape lt = new LayerTape();
                t.layers.add(lt);
                lt.x = x;
                lt.z = Tensor.f32(n, 4);
                lt.y = Tensor.f32(n, 2);
                lt.gAtt = Tensor.f32(n, 1);
                lt.gMlp = Tensor.f32(n, 1);
                sampleGates(l, lt, noise, tau, hardGatesOf == null ? null : hardGatesOf.layers.get(l), t.straightThrough);
                // Attention, computed for every row, then gated.
                lt.xbA = Tensor.f32(n, d);
                backend.rmsnorm(lt.xbA, x, lw.attnNorm(), c.normEps());
                lt.q = Tensor.f32(n, qd);
                lt.k = Tensor.f32(n, kvd);
                lt.v = Tensor.f32(n, kvd);
                project(lt, l, Projection.Q, lt.q, lt.xbA, dropout);
                project(lt, l, Projection.K, lt.k, lt.xbA, dropout);
                project(lt, l, Projection.V, lt.v, lt.xbA, dropout);
                backend.rope(lt.q, t.pos, c.headDim(), c.ropeTheta(), RopeStyle.ADJACENT);
                backend.rope(lt.k, t.pos, c.headDim(), c.ropeTheta(), RopeStyle.ADJACENT);
                lt.att = Tensor.f32(n, qd);
                backend.attention(lt.att, lt.q, lt.k, lt.v, t.pos, c.nHeads(), c.nKvHeads(), c.headDim());
                lt.o = Tensor.f32(n, d);
                project(lt, l, Projection.O, lt.o, lt.att, dropout);
                lt.h = gatedResidual(x, lt.o, lt.gAtt);
                // MLP, likewise.
                lt.xbM = Tensor.f32(n, d);
                backend.rmsnorm(lt.xbM, lt.h, lw.ffnNorm(), c.normEps());
                lt.gate = Tensor.f32(n, hid);
                lt.up = Tensor.f32(n, hid);
                project(lt, l, Projection.GATE, lt.gate, lt.xbM, dropout);
                project(lt, l, Projection.UP, lt.up, lt.xbM, dropout);
                lt.act = Tensor.f32(n, hid);
                backend.swiglu(lt.act, lt.gate, lt.up);
                lt.m = Tensor.f32(n, d);
                project(lt, l, Projection.DOWN, lt.m, lt.act, dropout);
                x = gatedResidual(lt.h, lt.m, lt.gMlp);
            }
            t.xOut = x;
            try (Tensor xf = Tensor.f32(n, d)) {
                backend.rmsnorm(xf, x, w.outputNorm(), c.normEps());
                t.logits = Tensor.f32(n, c.vocabSize());
                backend.matmul(t.logits, xf, w.output());
            }
            t.losses = Tensor.f32(n, 1);
            backend.crossEntropy(t.losses, t.logits, t.targets);
            return t;
        } catch (RuntimeException e) {
            t.close();
            throw e;
        }
    }

    // out = in·Wᵀ for projection p of layer l, plus the adapter's term on dropout(in) when it adapts p (the mask and
    // the dropped input go on the tape).
    private void project(LayerTape lt, int l, Projection p, Tensor out, Tensor in, Rng dropout) {
        backend.matmul(out, in, p.of(w.layers().get(l)));
        if (lora == null || !lora.adapts(p)) return;
        Tensor adapterIn = in;
        double rate = lora.config().dropout();
        if (dropout != null && rate > 0) {
            Tensor mask = Tensor.f32(in.rows(), in.cols()), dropped = Tensor.f32(in.rows(), in.cols());
            lt.dropped.put(p, new Tensor[] {mask, dropped});
            FloatBuffer mv = mask.floats(), dv = dropped.floats(), iv = in.floats();
            float keep = (float) (1 / (1 - rate));
            for (int i = 0; i < mv.limit(); i++) {
                float f = dropout.nextDouble() < rate ? 0f : keep;
                mv.put(i, f);
                dv.put(i, iv.get(i) * f);
            }
            adapterIn = dropped;
        }
        backend.loraForward(out, adapterIn, lora.a(l, p), lora.b(l, p), lora.config().scale());
    }

    // z = x·Wᵣᵀ + b; hard Gumbel sample per module (deterministic without noise); y keeps
    // sigmoid((a_exec − a_skip)/tau) for the backward. Without routers every gate is 1.
    private void sampleGates(int l, LayerTape lt, Rng noise, double tau, LayerTape hard, boolean straightThrough) {
        int n = lt.x.rows();
        if (routers == null) {
            lt.gAtt.fill(1f);
            lt.gMlp.fill(1f);
            return;
        }
        backend.matmul(lt.z, lt.x, routers.layerWeight(l));
        for (int i = 0; i < n; i++) {
            for (int mod = 0; mod < 2; mod++) {
                int exec = 2 * mod, skip = 2 * mod + 1;
                float z0 = lt.z.get(4L * i + exec) + routers.bias(l, exec);
                float z1 = lt.z.get(4L * i + skip) + routers.bias(l, skip);
                lt.z.set(4L * i + exec, z0);
                lt.z.set(4L * i + skip, z1);
                double a = noise == null ? z0 - z1 : (z0 + noise.gumbel()) - (z1 + noise.gumbel());
                double y = 1.0 / (1.0 + Math.exp(-a / tau));
                lt.y.set(2L * i + mod, (float) y);
                double g = a > 0 ? 1 : 0;
                if (hard != null) {
                    g = (mod == 0 ? hard.gAtt : hard.gMlp).get(i) + (straightThrough ? y - hard.y.get(2L * i + mod) : 0);
                }
                (mod == 0 ? lt.gAtt : lt.gMlp).set(i, (float) g);
            }
        }
    }

    // out = x + g·f, a new tensor (x stays on the tape).
    private Tensor gatedResidual(Tensor x, Tensor f, Tensor g) {
        Tensor out = Tensor.f32(x.rows(), x.cols());
        try (Tensor gf = Tensor.f32(f.rows(), f.cols())) {
            gf.copyFrom(f);
            backend.scaleRows(gf, g);
            out.copyFrom(x);
            backend.add(out, gf);
        }
        return out;
    }

    /** Stage 1's backward pass: router gradients only; see {@link #backward(Tape, float, float, Tensor, Tensor, LoraAdapter)}. */
    void backward(Tape t, float ceScale, float gateGrad, Tensor dWeight, Tensor dBias) {
        backward(t, ceScale, gateGrad, dWeight, dBias, null);
    }

    /**
     * Backward pass of one sequence. Cross-entropy enters with weight {@code ceScale} per token (1/N for the mean
     * over the batch's N predicted tokens); every sampled gate additionally receives {@code gateGrad} (the
     * sparsity penalty's straight-through gradient, the same for every gate). Stage 1: router gradients are added
     * into {@code dWeight} [layers·4, d] and {@code dBias} [layers·4, 1]. Stage 2: the adapter's into the
     * same-shaped matrices of {@code dLora}; the routers get none (pass null).
     */
    void backward(Tape t, float ceScale, float gateGrad, Tensor dWeight, Tensor dBias, LoraAdapter dLora) {
        if ((lora != null) != (dLora != null)) throw new IllegalArgumentException("adapter gradients go with an adapter");
        if (t.straightThrough && (dWeight == null || dBias == null)) {
            throw new IllegalArgumentException("stage 1 with sampled gates needs router gradients to add into");
        }
        int n = t.n, d = c.dim(), qd = c.nHeads() * c.headDim(), kvd = c.kvDim(), hid = c.hiddenDim();
        try (Tensor dLogits = Tensor.f32(n, c.vocabSize()); Tensor dxf = Tensor.f32(n, d);
                Tensor dx = Tensor.f32(n, d); Tensor dh = Tensor.f32(n, d); Tensor tmp = Tensor.f32(n, d);
                Tensor dq = Tensor.f32(n, qd); Tensor dk = Tensor.f32(n, kvd); Tensor dv = Tensor.f32(n, kvd);
                Tensor dAtt = Tensor.f32(n, qd); Tensor dAct = Tensor.f32(n, hid); Tensor dGate = Tensor.f32(n, hid);
                Tensor dUp = Tensor.f32(n, hid); Tensor dgAtt = Tensor.f32(n, 1); Tensor dgMlp = Tensor.f32(n, 1);
                Tensor dz = Tensor.f32(n, 4)) {
            // Head: logits = norm(x_L)·Eᵀ.
            backend.crossEntropyBackward(dLogits, t.logits, t.targets, null, ceScale);
            try (Tensor xf = Tensor.f32(n, d)) {
                backend.rmsnorm(xf, t.xOut, w.outputNorm(), c.normEps());
                backend.matmulBackward(dxf, null, dLogits, xf, w.output(), false);
            }
            backend.rmsnormBackward(dx, null, dxf, t.xOut, w.outputNorm(), c.normEps());
            for (int l = c.nLayers() - 1; l >= 0; l--) {
                LlamaWeights.Layer lw = w.layers().get(l);
                LayerTape lt = t.layers.get(l);
                // MLP: out = h + g_mlp·m. dx holds dL/dout.
                if (t.straightThrough) backend.rowDot(dgMlp, dx, lt.m);
                tmp.copyFrom(dx);
                backend.scaleRows(tmp, lt.gMlp);
                projectBackward(lt, l, Projection.DOWN, dAct, tmp, lt.act, false, dLora);
                backend.swigluBackward(dGate, dUp, dAct, lt.gate, lt.up);
                try (Tensor dxbM = Tensor.f32(n, d)) {
                    projectBackward(lt, l, Projection.GATE, dxbM, dGate, lt.xbM, false, dLora);
                    projectBackward(lt, l, Projection.UP, dxbM, dUp, lt.xbM, true, dLora);
                    backend.rmsnormBackward(dh, null, dxbM, lt.h, lw.ffnNorm(), c.normEps());
                }
                backend.add(dh, dx);
                // Attention: h = x + g_att·o. dh holds dL/dh.
                if (t.straightThrough) backend.rowDot(dgAtt, dh, lt.o);
                tmp.copyFrom(dh);
                backend.scaleRows(tmp, lt.gAtt);
                projectBackward(lt, l, Projection.O, dAtt, tmp, lt.att, false, dLora);
                dk.fill(0f);
                dv.fill(0f);
                backend.attentionBackward(dq, dk, dv, dAtt, lt.q, lt.k, lt.v, t.pos, c.nHeads(), c.nKvHeads(), c.headDim());
                backend.ropeBackward(dq, t.pos, c.headDim(), c.ropeTheta(), RopeStyle.ADJACENT);
                backend.ropeBackward(dk, t.pos, c.headDim(), c.ropeTheta(), RopeStyle.ADJACENT);
                try (Tensor dxbA = Tensor.f32(n, d)) {
                    projectBackward(lt, l, Projection.Q, dxbA, dq, lt.xbA, false, dLora);
                    projectBackward(lt, l, Projection.K, dxbA, dk, lt.xbA, true, dLora);
                    projectBackward(lt, l, Projection.V, dxbA, dv, lt.xbA, true, dLora);
                    backend.rmsnormBackward(dx, null, dxbA, lt.x, lw.attnNorm(), c.normEps());
                }
                backend.add(dx, dh);
                if (!t.straightThrough) continue;
                // Routers: straight-through from the hard gates into z, then into Wᵣ, b and x.
                for (int i = 0; i < n; i++) {
                    for (int mod = 0; mod < 2; mod++) {
                        double dg = (mod == 0 ? dgAtt : dgMlp).get(i) + gateGrad;
                        double y = lt.y.get(2L * i + mod);
                        float g = (float) (dg * y * (1 - y) / t.tau);
                        dz.set(4L * i + 2 * mod, g);
                        dz.set(4L * i + 2 * mod + 1, -g);
                    }
                }
                backend.matmulBackward(dx, dWeight.rows(4 * l, 4), dz, lt.x, routers.layerWeight(l), true);
                for (int i = 0; i < n; i++) {
                    for (int ch = 0; ch < 4; ch++) dBias.set(4L * l + ch, dBias.get(4L * l + ch) + dz.get(4L * i + ch));
                }
            }
        }
    }

    // Backward of project: dIn (written, or added into when addToDIn) gets dOut·W plus the adapter's share through
    // the dropout mask; the adapter's gradients go into dLora.
    private void projectBackward(LayerTape lt, int l, Projection p, Tensor dIn, Tensor dOut, Tensor in, boolean addToDIn,
                                 LoraAdapter dLora) {
        backend.matmulBackward(dIn, null, dOut, in, p.of(w.layers().get(l)), addToDIn);
        if (lora == null || !lora.adapts(p)) return;
        Tensor a = lora.a(l, p), b = lora.b(l, p), dA = dLora.a(l, p), dB = dLora.b(l, p);
        float scale = lora.config().scale();
        Tensor[] dropped = lt.dropped.get(p);
        if (dropped == null) {
            backend.loraBackward(dIn, dA, dB, dOut, in, a, b, scale);
            return;
        }
        try (Tensor dDropped = Tensor.f32(in.rows(), in.cols())) {
            backend.loraBackward(dDropped, dA, dB, dOut, dropped[1], a, b, scale);
            FloatBuffer g = dDropped.floats(), mask = dropped[0].floats();
            for (int i = 0; i < g.limit(); i++) g.put(i, g.get(i) * mask.get(i));
            backend.add(dIn, dDropped);
        }
    }
}
