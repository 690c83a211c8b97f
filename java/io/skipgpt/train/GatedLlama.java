package io.skipgpt.train;

import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.Projection;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.RopeStyle;
import io.skipgpt.tensor.Tensor;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

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
 *
 * <p>Every tensor an op reads or writes lives on the backend's device, the gates and their gradient too: the
 * backend samples them ({@link Backend#routerGates}, Gumbel noise from a counter-based generator, so every backend
 * draws the same) and takes them back into the router logits ({@link Backend#routerGatesBackward}); the adapter's
 * dropout masks are drawn there too ({@link Backend#dropoutMask}, the same generator). Per sequence that is one
 * upload of its ids, positions and targets, one download of its losses and one of its hard gates (the sparsity
 * penalty's sign and the keep rates are figured from them on the host).
 */
final class GatedLlama {
    private final LlamaConfig c;
    private final LlamaWeights w;
    private final Backend backend;
    private final Tensor routerWeight, routerBias;
    private final LoraAdapter lora;

    /**
     * @param weights the frozen base model, on the backend's device
     * @param routerWeight the routers' weight [layers·4, d] on the backend's device, or null: no routers, every gate
     *     open (a dense model)
     * @param routerBias their bias [layers·4, 1] on the backend's device (null without routers)
     * @param lora null: stage 1 (no adapter, routers train); else the adapter on the backend's device
     */
    GatedLlama(LlamaConfig config, LlamaWeights weights, Backend backend, Tensor routerWeight, Tensor routerBias,
               LoraAdapter lora) {
        if ((routerWeight == null) != (routerBias == null)) throw new IllegalArgumentException("router weight without bias");
        this.c = config;
        this.w = weights;
        this.backend = backend;
        this.routerWeight = routerWeight;
        this.routerBias = routerBias;
        this.lora = lora;
    }

    /** Activations of one layer, kept for the backward pass. Shapes for n rows; tensors on the backend's device. */
    private static final class LayerTape {
        Tensor x; // [n, d] layer input
        // [2, n] views of the tape's gates and soft gates (null without routers): row 0 attention's, row 1 the MLP's
        Tensor gates, soft;
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
            for (Tensor t : new Tensor[] {x, xbA, q, k, v, att, o, h, xbM, gate, up, act, m}) if (t != null) t.close();
            for (Tensor[] pair : dropped.values()) for (Tensor t : pair) t.close();
        }
    }

    /** One sequence's forward pass: inputs, targets, every layer's activations, logits and per-token losses. */
    final class Tape implements AutoCloseable {
        final int n;
        final Tensor pos; // [n, 1] on the device
        final Tensor targets; // [n, 1] on the device
        final List<LayerTape> layers = new ArrayList<>();
        // [layers·2, n] on the device: layer l's attention gates at row 2l, its MLP's at 2l + 1 (null without routers)
        final Tensor gates, soft;
        float[] gatesOnHost; // gates, downloaded at the end of the forward (null without routers: every gate is 1)
        Tensor xOut; // [n, d] final residual, on the device
        Tensor logits; // [n, vocab] on the device
        float[] losses; // [n] per-token cross-entropy, on the host
        final double tau;
        final boolean straightThrough; // stage 1, gates sampled: the backward goes through their soft probabilities

        Tape(int[] targets, double tau, boolean straightThrough) {
            this.n = targets.length;
            this.tau = tau;
            this.straightThrough = straightThrough;
            this.pos = uploadInts(IntStream.range(0, n).toArray(), n, 1);
            this.targets = uploadInts(targets, n, 1);
            this.gates = routerWeight == null ? null : f32(2 * c.nLayers(), n);
            this.soft = routerWeight == null ? null : f32(2 * c.nLayers(), n);
        }

        /** Sum of the hard gates over this sequence's tokens, layers and both module kinds. */
        double gateSum() {
            if (gatesOnHost == null) return 2.0 * c.nLayers() * n;
            double s = 0;
            for (float g : gatesOnHost) s += g;
            return s;
        }

        double nllSum() {
            double s = 0;
            for (float loss : losses) s += loss;
            return s;
        }

        /** Execute rates of layer l over this sequence: {attention, MLP} counts. */
        long[] keptCounts(int l) {
            if (gatesOnHost == null) return new long[] {n, n};
            long a = 0, b = 0;
            for (int i = 0; i < n; i++) {
                a += (long) gatesOnHost[2 * l * n + i];
                b += (long) gatesOnHost[(2 * l + 1) * n + i];
            }
            return new long[] {a, b};
        }

        @Override
        public void close() {
            pos.close();
            targets.close();
            if (gates != null) gates.close();
            if (soft != null) soft.close();
            for (LayerTape l : layers) l.close();
            if (xOut != null) xOut.close();
            if (logits != null) logits.close();
        }
    }

    /** The tapes of a micro-batch's sequences with their totals; closing frees them all. */
    static final class Tapes implements AutoCloseable {
        final List<Tape> all = new ArrayList<>();
        double nllSum; // summed cross-entropy of every token
        double gateSum; // summed gates of every token, layer and module
        long tokens;

        @Override
        public void close() {
            all.forEach(Tape::close);
        }
    }

    /** Forward passes of a batch's sequences: {@link #forward(int[], int[], NoiseStream, double, NoiseStream, Tape)}. */
    Tapes forward(TokenDataset.Batch batch, NoiseStream noise, double tau, NoiseStream dropout) {
        Tapes tapes = new Tapes();
        try {
            for (int s = 0; s < batch.size(); s++) {
                Tape t = forward(batch.inputs()[s], batch.targets()[s], noise, tau, dropout, null);
                tapes.all.add(t);
                tapes.nllSum += t.nllSum();
                tapes.gateSum += t.gateSum();
                tapes.tokens += t.n;
            }
            return tapes;
        } catch (RuntimeException e) {
            tapes.close();
            throw e;
        }
    }

    /**
     * Forward pass of one sequence from an empty cache: gates sampled with {@code noise} at temperature
     * {@code tau}; logits and per-token cross-entropy against {@code targets}.
     */
    Tape forward(int[] inputs, int[] targets, NoiseStream noise, double tau) {
        return forward(inputs, targets, noise, tau, null, null);
    }

    /** Stage 1's surrogate forward pass: see {@link #forward(int[], int[], NoiseStream, double, NoiseStream, Tape)}. */
    Tape forward(int[] inputs, int[] targets, NoiseStream noise, double tau, Tape hardGatesOf) {
        return forward(inputs, targets, noise, tau, null, hardGatesOf);
    }

    /**
     * Forward pass of one sequence from an empty cache: gates sampled with {@code noise} at temperature {@code tau}
     * (deterministic when noise is null; a layer takes one draw of the stream), adapter dropout masks drawn from
     * {@code dropout} (none when null), logits and per-token cross-entropy against {@code targets}.
     *
     * <p>With {@code hardGatesOf} (a tape of the same sequence, noise and dropout), it is the function whose
     * gradient {@link #backward} computes, so that finite differences of it check the backward. In stage 1 that is
     * the straight-through estimator: each gate is {@code g_hard + y − y_hard} — the hard value at the reference
     * point, moving with the soft probability y around it. In stage 2 each gate is {@code g_hard}, a constant.
     */
    Tape forward(int[] inputs, int[] targets, NoiseStream noise, double tau, NoiseStream dropout, Tape hardGatesOf) {
        int n = inputs.length;
        if (targets.length != n) throw new IllegalArgumentException("inputs and targets differ in length");
        int d = c.dim(), qd = c.nHeads() * c.headDim(), kvd = c.kvDim(), hid = c.hiddenDim();
        Tape t = new Tape(targets, tau, routerWeight != null && noise != null && lora == null);
        try (Tensor ids = uploadInts(inputs, n, 1)) {
            Tensor x = f32(n, d);
            backend.embedding(x, w.tokenEmbedding(), ids);
            for (int l = 0; l < c.nLayers(); l++) {
                LlamaWeights.Layer lw = w.layers().get(l);
                LayerTape lt = new LayerTape();
                t.layers.add(lt);
                lt.x = x;
                sampleGates(t, l, noise, hardGatesOf);
                // Attention, computed for every row, then gated.
                lt.xbA = f32(n, d);
                backend.rmsnorm(lt.xbA, x, lw.attnNorm(), c.normEps());
                lt.q = f32(n, qd);
                lt.k = f32(n, kvd);
                lt.v = f32(n, kvd);
                project(lt, l, Projection.Q, lt.q, lt.xbA, dropout);
                project(lt, l, Projection.K, lt.k, lt.xbA, dropout);
                project(lt, l, Projection.V, lt.v, lt.xbA, dropout);
                backend.rope(lt.q, t.pos, c.headDim(), c.ropeTheta(), RopeStyle.ADJACENT);
                backend.rope(lt.k, t.pos, c.headDim(), c.ropeTheta(), RopeStyle.ADJACENT);
                lt.att = f32(n, qd);
                backend.attention(lt.att, lt.q, lt.k, lt.v, t.pos, c.nHeads(), c.nKvHeads(), c.headDim());
                lt.o = f32(n, d);
                project(lt, l, Projection.O, lt.o, lt.att, dropout);
                lt.h = gatedResidual(x, lt.o, lt.gates == null ? null : lt.gates.rows(0, 1));
                // MLP, likewise.
                lt.xbM = f32(n, d);
                backend.rmsnorm(lt.xbM, lt.h, lw.ffnNorm(), c.normEps());
                lt.gate = f32(n, hid);
                lt.up = f32(n, hid);
                project(lt, l, Projection.GATE, lt.gate, lt.xbM, dropout);
                project(lt, l, Projection.UP, lt.up, lt.xbM, dropout);
                lt.act = f32(n, hid);
                backend.swiglu(lt.act, lt.gate, lt.up);
                lt.m = f32(n, d);
                project(lt, l, Projection.DOWN, lt.m, lt.act, dropout);
                x = gatedResidual(lt.h, lt.m, lt.gates == null ? null : lt.gates.rows(1, 1));
            }
            t.xOut = x;
            if (t.gates != null) t.gatesOnHost = download(t.gates);
            try (Tensor xf = f32(n, d)) {
                backend.rmsnorm(xf, x, w.outputNorm(), c.normEps());
                t.logits = f32(n, c.vocabSize());
                backend.matmul(t.logits, xf, w.output());
            }
            try (Tensor losses = f32(n, 1)) {
                backend.crossEntropy(losses, t.logits, t.targets);
                t.losses = download(losses);
            }
            return t;
        } catch (RuntimeException e) {
            t.close();
            throw e;
        }
    }

    // out = in·Wᵀ for projection p of layer l, plus the adapter's term on dropout(in) when it adapts p (the mask and
    // the dropped input go on the tape). The mask is drawn on the backend from the dropout stream (Philox: the same
    // mask on every backend), so nothing crosses to the host.
    private void project(LayerTape lt, int l, Projection p, Tensor out, Tensor in, NoiseStream dropout) {
        backend.matmul(out, in, p.of(w.layers().get(l)));
        if (lora == null || !lora.adapts(p)) return;
        Tensor adapterIn = in;
        double rate = lora.config().dropout();
        if (dropout != null && rate > 0) {
            Tensor mask = f32(in.rows(), in.cols()), dropped = f32(in.rows(), in.cols());
            backend.dropoutMask(mask, rate, dropout.next());
            lt.dropped.put(p, new Tensor[] {mask, dropped});
            backend.copy(dropped, in);
            multiply(dropped, mask);
            adapterIn = dropped;
        }
        lora.addTo(out, adapterIn, l, p, backend);
    }

    // Layer l's gates on the tape: z = x·Wᵣᵀ [n, 4], then the backend adds the bias and samples (the layer's draw of
    // the noise), or takes a hard tape's gates for the surrogate. Without routers there is nothing to sample: every gate
    // is 1 and the residual adds each module's output as it is.
    private void sampleGates(Tape t, int l, NoiseStream noise, Tape hard) {
        LayerTape lt = t.layers.get(l);
        if (routerWeight == null) return;
        int n = lt.x.rows();
        lt.gates = t.gates.rows(2 * l, 2);
        lt.soft = t.soft.rows(2 * l, 2);
        try (Tensor logits = f32(n, 4)) {
            backend.matmul(logits, lt.x, routerWeight.rows(4 * l, 4));
            backend.routerGates(lt.gates, lt.soft, logits, routerBias.rows(4 * l, 4), noise == null ? null : noise.next(),
                    t.tau, hard == null ? null : hard.gates.rows(2 * l, 2),
                    hard == null || !t.straightThrough ? null : hard.soft.rows(2 * l, 2));
        }
    }

    // out = g·f + x, a new tensor (x stays on the tape); g [n] is one row of the layer's gates, or null: all 1.
    // (Float addition commutes, so this is x + g·f to the bit.)
    private Tensor gatedResidual(Tensor x, Tensor f, Tensor g) {
        Tensor out = f32(x.rows(), x.cols());
        backend.copy(out, f);
        if (g != null) backend.scaleRows(out, g);
        backend.add(out, x);
        return out;
    }

    /**
     * Backward pass of one sequence. Cross-entropy enters with weight {@code ceScale} per token (1/N for the mean
     * over the batch's N predicted tokens); every sampled gate additionally receives {@code gateGrad} (the
     * sparsity penalty's straight-through gradient, the same for every gate). Stage 1: router gradients are added
     * into {@code dWeight} [layers·4, d] and {@code dBias} [layers·4, 1], both on the backend's device.
     * Stage 2: the adapter's into the same-shaped matrices of {@code dLora} (on the device); the routers get none
     * (pass null).
     */
    void backward(Tape t, float ceScale, float gateGrad, Tensor dWeight, Tensor dBias, LoraAdapter dLora) {
        if ((lora != null) != (dLora != null)) throw new IllegalArgumentException("adapter gradients go with an adapter");
        if (t.straightThrough && (dWeight == null || dBias == null)) {
            throw new IllegalArgumentException("stage 1 with sampled gates needs router gradients to add into");
        }
        int n = t.n, d = c.dim(), qd = c.nHeads() * c.headDim(), kvd = c.kvDim(), hid = c.hiddenDim();
        try (Tensor dLogits = f32(n, c.vocabSize()); Tensor dxf = f32(n, d); Tensor dx = f32(n, d);
                Tensor dh = f32(n, d); Tensor tmp = f32(n, d); Tensor dq = f32(n, qd); Tensor dAtt = f32(n, qd);
                Tensor dAct = f32(n, hid); Tensor dGate = f32(n, hid); Tensor dUp = f32(n, hid);
                Tensor dxb = f32(n, d); // a sublayer's normalised input's gradient: its first projection writes it
                Tensor dg = f32(2, n)) { // dL/dg laid out as the gates
            // Head: logits = norm(x_L)·Eᵀ.
            backend.crossEntropyBackward(dLogits, t.logits, t.targets, null, ceScale);
            try (Tensor xf = f32(n, d)) {
                backend.rmsnorm(xf, t.xOut, w.outputNorm(), c.normEps());
                backend.matmulBackward(dxf, null, dLogits, xf, w.output(), false);
            }
            backend.rmsnormBackward(dx, null, dxf, t.xOut, w.outputNorm(), c.normEps());
            for (int l = c.nLayers() - 1; l >= 0; l--) {
                LlamaWeights.Layer lw = w.layers().get(l);
                LayerTape lt = t.layers.get(l);
                // MLP: out = h + g_mlp·m. dx holds dL/dout.
                if (t.straightThrough) backend.rowDot(dg.rows(1, 1), dx, lt.m);
                backend.copy(tmp, dx);
                if (lt.gates != null) backend.scaleRows(tmp, lt.gates.rows(1, 1));
                projectBackward(lt, l, Projection.DOWN, dAct, tmp, lt.act, false, dLora);
                backend.swigluBackward(dGate, dUp, dAct, lt.gate, lt.up);
                projectBackward(lt, l, Projection.GATE, dxb, dGate, lt.xbM, false, dLora);
                projectBackward(lt, l, Projection.UP, dxb, dUp, lt.xbM, true, dLora);
                backend.rmsnormBackward(dh, null, dxb, lt.h, lw.ffnNorm(), c.normEps());
                backend.add(dh, dx);
                // Attention: h = x + g_att·o. dh holds dL/dh.
                if (t.straightThrough) backend.rowDot(dg.rows(0, 1), dh, lt.o);
                backend.copy(tmp, dh);
                if (lt.gates != null) backend.scaleRows(tmp, lt.gates.rows(0, 1));
                projectBackward(lt, l, Projection.O, dAtt, tmp, lt.att, false, dLora);
                // dk and dv start at zero: attentionBackward adds into them.
                try (Tensor dk = f32(n, kvd); Tensor dv = f32(n, kvd)) {
                    backend.attentionBackward(dq, dk, dv, dAtt, lt.q, lt.k, lt.v, t.pos, c.nHeads(), c.nKvHeads(),
                            c.headDim());
                    backend.ropeBackward(dq, t.pos, c.headDim(), c.ropeTheta(), RopeStyle.ADJACENT);
                    backend.ropeBackward(dk, t.pos, c.headDim(), c.ropeTheta(), RopeStyle.ADJACENT);
                    projectBackward(lt, l, Projection.Q, dxb, dq, lt.xbA, false, dLora);
                    projectBackward(lt, l, Projection.K, dxb, dk, lt.xbA, true, dLora);
                    projectBackward(lt, l, Projection.V, dxb, dv, lt.xbA, true, dLora);
                    backend.rmsnormBackward(dx, null, dxb, lt.x, lw.attnNorm(), c.normEps());
                }
                backend.add(dx, dh);
                if (t.straightThrough) routerBackward(l, lt, t.tau, dg, gateGrad, dx, dWeight, dBias);
            }
        }
    }

    // Routers: straight-through from the hard gates into z (dz [n, 4], and the bias's gradient, its column sums), then
    // into Wᵣ and x (dx += dz·Wᵣ).
    private void routerBackward(int l, LayerTape lt, double tau, Tensor dg, float gateGrad, Tensor dx, Tensor dWeight,
                                Tensor dBias) {
        try (Tensor dz = f32(lt.x.rows(), 4)) {
            backend.routerGatesBackward(dz, dBias.rows(4 * l, 4), dg, lt.soft, gateGrad, tau);
            backend.matmulBackward(dx, dWeight.rows(4 * l, 4), dz, lt.x, routerWeight.rows(4 * l, 4), true);
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
        try (Tensor dDropped = f32(in.rows(), in.cols())) { // zero: loraBackward adds into it
            backend.loraBackward(dDropped, dA, dB, dOut, dropped[1], a, b, scale);
            multiply(dDropped, dropped[0]);
            backend.add(dIn, dDropped);
        }
    }

    // x *= y element by element: scaleRows over one-element rows, as the op set has no elementwise product.
    private void multiply(Tensor x, Tensor y) {
        backend.scaleRows(x.reshape((int) x.size(), 1), y.reshape((int) y.size(), 1));
    }

    // A zero-filled tensor on the backend's device.
    private Tensor f32(int... shape) {
        return backend.allocate(Tensor.DType.F32, shape);
    }

    // Host values on the backend's device: one copy.
    private Tensor uploadInts(int[] values, int... shape) {
        try (Tensor host = Tensor.ofInts(values, shape)) {
            return backend.upload(host);
        }
    }

    // A device tensor's values on the host: one copy.
    private float[] download(Tensor t) {
        try (Tensor host = backend.download(t)) {
            return host.toFloatArray();
        }
    }
}
