package io.skipgpt.train;

import com.google.gson.JsonObject;
import io.skipgpt.model.Adapter;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.routing.RouterFile;
import io.skipgpt.routing.RouterGate;
import io.skipgpt.routing.Routers;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Tensor;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Stage 1 of SkipGPT: router tuning with the base model frozen. Loss {@code CE + alpha·|(1 − T) − r|} where r is
 * the mean of all execute gates of the batch (every token, layer and both module kinds); hard Gumbel gates with
 * a straight-through gradient, tau annealed linearly 5 → 1 over the run; AdamW with clipping. The loop, its
 * atomic checkpoints (routers, optimizer moments, step, data position, noise position) and exact resume are
 * {@link TrainingLoop}'s.
 *
 * <p>On a device backend the whole step runs there — the passes, the gates' sampling, AdamW — on a copy of the base
 * weights made once per run and copies of the routers, which train there; held-out evaluations route with those
 * copies, and the host copy of the routers is refreshed only for the result.
 */
public final class RouterTrainer {
    /**
     * Settings of a run: the target module sparsity, the weight {@code alpha} of the sparsity penalty, whether the
     * execute threshold is calibrated after training, and how it optimises.
     */
    public record Options(double sparsity, double alpha, boolean calibrate, Optimization optimization) {
        public Options {
            require(sparsity >= 0 && sparsity < 1, "--sparsity must be in [0, 1), got " + sparsity);
            require(alpha >= 0, "--alpha must be >= 0");
        }

        JsonObject toJson() {
            JsonObject o = new JsonObject();
            o.addProperty("sparsity", sparsity);
            o.addProperty("alpha", alpha);
            optimization.addTo(o);
            return o;
        }
    }

    private final LlamaConfig config;
    private final LlamaWeights weights;
    private final Backend backend;
    private final Options options;
    private final TokenDataset data;
    private final Path out;
    private final PrintStream progress;

    public RouterTrainer(LlamaConfig config, LlamaWeights weights, Backend backend, TokenDataset data, Options options,
                         Path out, PrintStream progress) {
        this.config = config;
        this.weights = weights;
        this.backend = backend;
        this.data = data;
        this.options = options;
        this.out = out;
        this.progress = progress;
    }

    static final int CALIBRATION_SEQUENCES = 64;

    public static Path routersFile(Path out) {
        return out.resolve("routers.safetensors");
    }

    /** With calibration, the routers as trained, before the threshold shift. */
    public static Path rawRoutersFile(Path out) {
        return out.resolve("routers-uncalibrated.safetensors");
    }

    /** Trains (or resumes when {@code resume} and a checkpoint exists), writes the routers and returns the final eval. */
    public HeldOut run(boolean resume) throws IOException {
        return runUntil(resume, options.optimization().steps());
    }

    /**
     * Like {@link #run}, but stops after step {@code stopAfter} as a killed process would (nothing written after
     * the last checkpoint; no router file), returning null. Tests interrupt runs this way.
     */
    HeldOut runUntil(boolean resume, long stopAfter) throws IOException {
        TrainingLoop.Settings settings = options.optimization().settings();
        try (Routers routers = Routers.initialise(config.nLayers(), config.dim(), options.optimization().seed());
                OnBackend<LlamaWeights> base = OnBackend.of(weights, backend);
                OnBackend<Tensor> weight = OnBackend.of(routers.weight(), backend);
                OnBackend<Tensor> bias = OnBackend.of(routers.bias(), backend);
                Tensor dWeight = backend.allocate(Tensor.DType.F32, config.nLayers() * 4, config.dim());
                Tensor dBias = backend.allocate(Tensor.DType.F32, config.nLayers() * 4, 1);
                RouterGate gate = RouterGate.deterministic(weight.get(), bias.get(), backend)) {
            Stage stage = new Stage(routers, base.get(), weight, bias, dWeight, dBias, gate);
            return new TrainingLoop(config, backend, data, settings, out, progress).run(stage, resume, stopAfter);
        }
    }

    /**
     * Held-out perplexity and realised sparsity with deterministic routing, the way inference runs. On a device
     * backend each call copies the base weights and the routers there (a run copies them once).
     */
    HeldOut evaluate(Routers routers) {
        return evaluateOn(routers, data.heldOut());
    }

    HeldOut evaluateOn(Routers routers, List<int[]> examples) {
        try (OnBackend<LlamaWeights> base = OnBackend.of(weights, backend);
                RouterGate gate = new RouterGate(routers, backend, RouterGate.Mode.DETERMINISTIC, 0)) {
            return evaluate(base.get(), gate, examples);
        }
    }

    // With the base weights and the gate's routers where the backend's ops read them.
    private HeldOut evaluate(LlamaWeights base, RouterGate gate, List<int[]> examples) {
        return HeldOut.evaluate(config, base, backend, examples, gate, Adapter.NONE);
    }

    /**
     * Threshold calibration: with deterministic routing a module runs iff z_exec > z_skip, which rounds the
     * probabilities training sampled from, so the realised sparsity usually falls short of the target. This finds
     * one shift delta, subtracted from every execute bias (execute iff z_exec − delta > z_skip), that brings the
     * deterministic sparsity on the first {@code sequences} training sequences to the target (bisection; the
     * sparsity grows with delta). Held-out data is not looked at. Returns delta.
     */
    double calibrate(Routers routers, int sequences) {
        try (OnBackend<LlamaWeights> base = OnBackend.of(weights, backend);
                OnBackend<Tensor> weight = OnBackend.of(routers.weight(), backend);
                OnBackend<Tensor> bias = OnBackend.of(routers.bias(), backend);
                RouterGate gate = RouterGate.deterministic(weight.get(), bias.get(), backend)) {
            return calibrate(base.get(), routers, bias, gate, sequences);
        }
    }

    // Each shift is made on the host routers and copied to bias, where gate reads it.
    private double calibrate(LlamaWeights base, Routers routers, OnBackend<Tensor> bias, RouterGate gate, int sequences) {
        List<int[]> calib = data.trainHead(sequences);
        double lo = -30, hi = 30;
        float[] unshifted = routers.bias().toFloatArray();
        for (int it = 0; it < 30; it++) {
            double mid = (lo + hi) / 2;
            shiftExecute(routers, bias, unshifted, mid);
            if (evaluate(base, gate, calib).moduleSparsity() < options.sparsity()) lo = mid;
            else hi = mid;
        }
        double delta = (lo + hi) / 2;
        shiftExecute(routers, bias, unshifted, delta);
        return delta;
    }

    private void shiftExecute(Routers routers, OnBackend<Tensor> bias, float[] unshifted, double delta) {
        for (int l = 0; l < config.nLayers(); l++) {
            for (int ch : new int[] {Routers.ATTN_EXECUTE, Routers.MLP_EXECUTE}) {
                routers.bias().set(4L * l + ch, (float) (unshifted[4 * l + ch] - delta));
            }
        }
        bias.upload();
    }

    /**
     * Stage 1: the routers train against CE and the sparsity penalty, tau annealed 5 -> 1. The passes read the
     * routers and add into their gradients where the backend's ops run.
     */
    private final class Stage implements TrainingLoop.Stage {
        private final Routers routers;
        private final LlamaWeights base;
        private final OnBackend<Tensor> weight, bias;
        private final List<AdamW.Param> params;
        private final GatedLlama gated;
        private final RouterGate gate;
        private final LinearAnneal tau = LinearAnneal.gumbelTau(options.optimization().steps());
        private final long noiseKey = Rng.derived(options.optimization().seed(), 1).nextLong();
        private NoiseStream noise = new NoiseStream(noiseKey, 0);

        /**
         * routers: the host copy; base: the weights where the backend's ops read them; weight, bias: the routers'
         * tensors there, dWeight, dBias their gradients, and gate the held-out evaluations' gate over them.
         */
        Stage(Routers routers, LlamaWeights base, OnBackend<Tensor> weight, OnBackend<Tensor> bias, Tensor dWeight,
              Tensor dBias, RouterGate gate) {
            this.routers = routers;
            this.gate = gate;
            this.base = base;
            this.weight = weight;
            this.bias = bias;
            this.params = List.of(new AdamW.Param("router.weight", weight.get(), dWeight, true),
                    new AdamW.Param("router.bias", bias.get(), dBias, false));
            this.gated = new GatedLlama(config, base, backend, weight.get(), bias.get(), null);
        }

        @Override
        public List<AdamW.Param> params() {
            return params;
        }

        @Override
        public long[] rngStates() {
            return new long[] {noise.position()};
        }

        @Override
        public void restoreRngs(long[] states) {
            noise = new NoiseStream(noiseKey, states[0]);
        }

        // Forward every sequence (gates sampled), then the batch's CE and sparsity ratio r, then backward every
        // sequence with CE weight 1/N and the penalty's gradient on every gate.
        @Override
        public void microBatch(TokenDataset.Batch batch, long step, TrainingLoop.StepFigures f) {
            double t = tau.at(step);
            f.tau = t;
            try (GatedLlama.Tapes tapes = gated.forward(batch, noise, t, null)) {
                f.addKept(tapes);
                double decisions = 2.0 * config.nLayers() * tapes.tokens;
                double r = tapes.gateSum / decisions;
                double gap = (1 - options.sparsity()) - r;
                f.add(tapes.nllSum / tapes.tokens, options.alpha() * Math.abs(gap), r, tapes.tokens);
                // d(alpha·|c − r|)/dg = alpha·sign(r − c)/decisions for every gate (straight-through).
                float gateGrad = (float) (options.alpha() * Math.signum(-gap) / decisions);
                for (GatedLlama.Tape tape : tapes.all) {
                    gated.backward(tape, (float) (1.0 / tapes.tokens), gateGrad, params.get(0).grad(),
                            params.get(1).grad(), null);
                }
            }
        }

        /** With the routers as they train, where they train. */
        @Override
        public HeldOut evaluate() {
            return heldOut();
        }

        @Override
        public String evalNote() {
            return String.format(" (target %.4f)", options.sparsity());
        }

        /** With calibration, the shifted bias goes back to the device as well, where later evaluations read it. */
        @Override
        public TrainingLoop.Stage.Result writeResult(HeldOut latest) throws IOException {
            // The routers' host copy for the files (nothing to copy on a host backend, where it is what trains).
            weight.download();
            bias.download();
            HeldOut figures = latest;
            if (options.calibrate()) {
                RouterFile.write(rawRoutersFile(out), routers);
                HeldOut before = latest != null ? latest : heldOut();
                double delta = calibrate(base, routers, bias, gate, CALIBRATION_SEQUENCES);
                figures = heldOut();
                progress.printf("calibrated the execute threshold by %.4f on %d training sequences: held-out sparsity "
                        + "%.4f -> %.4f%n", delta, CALIBRATION_SEQUENCES, before.moduleSparsity(),
                        figures.moduleSparsity());
            }
            RouterFile.write(routersFile(out), routers);
            return new TrainingLoop.Stage.Result("wrote " + routersFile(out), figures != null ? figures : heldOut());
        }

        private HeldOut heldOut() {
            return RouterTrainer.this.evaluate(base, gate, data.heldOut());
        }

        @Override
        public JsonObject hyper() {
            return options.toJson();
        }

        @Override
        public List<String> resumeKeys() {
            return List.of("sparsity", "steps", "batch", "accum", "alpha", "seed", "gate_noise");
        }

        @Override
        public Map<String, Long> fingerprints() {
            return Map.of();
        }
    }

    private static void require(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException(message);
    }
}
