package io.skipgpt.train;

import com.google.gson.JsonObject;
import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.lora.LoraConfig;
import io.skipgpt.lora.PeftDirectory;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.routing.Gate;
import io.skipgpt.routing.RouterGate;
import io.skipgpt.routing.Routers;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Tensor;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Stage 2 of SkipGPT: LoRA fine-tuning with the base model and the routers frozen. Gates are still hard-sampled
 * at tau = 1 (or deterministic), the loss is cross-entropy alone, AdamW with a cosine schedule after a warm-up.
 * Without routers it trains the same adapter on the dense model (the baseline with the same LoRA budget). The
 * adapter is written as a PEFT directory into the output directory, beside the JSONL log and the checkpoints;
 * the loop, its atomic checkpoints and exact resume are {@link TrainingLoop}'s.
 *
 * <p>On a device backend the whole step runs there — the passes, the gates' sampling, AdamW — on copies of the base
 * weights, the routers and the adapter, which trains there; held-out evaluations use the same copies, and the
 * adapter comes to the host only for the result.
 */
public final class LoraTrainer {
    /** How the gates decide while the adapter trains. */
    public enum Gates {
        /** As in stage 1: a Gumbel sample at tau = 1, i.e. execute with probability sigmoid(z_exec − z_skip). */
        SAMPLE,
        /** As inference decides: execute iff z_exec > z_skip. */
        DETERMINISTIC
    }

    /** Settings of a run: the adapter, how the gates decide while it trains, and how it optimises. */
    public record Options(LoraConfig lora, Gates gates, Optimization optimization) {
        JsonObject toJson() {
            JsonObject o = new JsonObject();
            o.addProperty("targets", lora.targetList());
            o.addProperty("rank", lora.rank());
            o.addProperty("lora_alpha", lora.alpha());
            o.addProperty("dropout", lora.dropout());
            o.addProperty("gates", gates.name().toLowerCase(java.util.Locale.ROOT));
            optimization.addTo(o);
            return o;
        }
    }

    private final LlamaConfig config;
    private final LlamaWeights weights;
    private final Backend backend;
    private final TokenDataset data;
    private final Routers routers;
    private final Options options;
    private final Path out;
    private final String baseModel;
    private final PrintStream progress;

    /**
     * @param routers the frozen routers of stage 1, or null to train on the dense model
     * @param baseModel what the adapter's config names as its base model (the model's path)
     */
    public LoraTrainer(LlamaConfig config, LlamaWeights weights, Backend backend, TokenDataset data, Routers routers,
                       Options options, Path out, String baseModel, PrintStream progress) {
        this.config = config;
        this.weights = weights;
        this.backend = backend;
        this.data = data;
        this.routers = routers;
        this.options = options;
        this.out = out;
        this.baseModel = baseModel;
        this.progress = progress;
    }

    /** Trains (or resumes when {@code resume} and a checkpoint exists), writes the adapter and returns the final eval. */
    public HeldOut run(boolean resume) throws IOException {
        return runUntil(resume, options.optimization().steps());
    }

    /** Like {@link #run}, but stops after step {@code stopAfter} as a killed process would, returning null. */
    HeldOut runUntil(boolean resume, long stopAfter) throws IOException {
        TrainingLoop.Settings settings = options.optimization().settings();
        try (LoraAdapter lora = LoraAdapter.initialise(config, options.lora(), options.optimization().seed());
                LoraAdapter grads = LoraAdapter.zeros(config, options.lora(), backend);
                OnBackend<LlamaWeights> base = OnBackend.of(weights, backend);
                OnBackend<Tensor> routerWeight = routers == null ? null : OnBackend.of(routers.weight(), backend);
                OnBackend<Tensor> routerBias = routers == null ? null : OnBackend.of(routers.bias(), backend);
                OnBackend<LoraAdapter> loraOn = OnBackend.of(lora, backend);
                RouterGate gate = routers == null ? null
                        : RouterGate.deterministic(routerWeight.get(), routerBias.get(), backend)) {
            GatedLlama gated = new GatedLlama(config, base.get(), backend, routers == null ? null : routerWeight.get(),
                    routers == null ? null : routerBias.get(), loraOn.get());
            Stage stage = new Stage(lora, base.get(), loraOn, grads, gated, gate == null ? Gate.DENSE : gate);
            return new TrainingLoop(config, backend, data, settings, out, progress).run(stage, resume, stopAfter);
        }
    }

    /** Stage 2: the adapter trains against CE alone; routers frozen, gates sampled at tau = 1 or deterministic. */
    private final class Stage implements TrainingLoop.Stage {
        private final LoraAdapter lora;
        private final LlamaWeights base;
        private final OnBackend<LoraAdapter> loraOn;
        private final LoraAdapter grads;
        private final List<AdamW.Param> params = new ArrayList<>();
        private final long routersFingerprint = routers == null ? 0 : fingerprint(routers); // frozen: once
        private final GatedLlama gated;
        private final Gate heldOutGate;
        private final long noiseKey = Rng.derived(options.optimization().seed(), 1).nextLong();
        private NoiseStream noise = new NoiseStream(noiseKey, 0);
        private final long dropoutKey = Rng.derived(options.optimization().seed(), 2).nextLong();
        private NoiseStream dropout = new NoiseStream(dropoutKey, 0);

        /**
         * lora: the host copy of the adapter; loraOn: the adapter where the backend's ops use it, and grads its
         * gradients there; base: the weights where the backend's ops read them; heldOutGate: the held-out evaluations'
         * gate, over the routers there.
         */
        Stage(LoraAdapter lora, LlamaWeights base, OnBackend<LoraAdapter> loraOn, LoraAdapter grads, GatedLlama gated,
              Gate heldOutGate) {
            this.lora = lora;
            this.heldOutGate = heldOutGate;
            this.base = base;
            this.loraOn = loraOn;
            this.grads = grads;
            this.gated = gated;
            Map<String, Tensor> g = grads.tensors();
            loraOn.get().tensors().forEach((name, value) -> params.add(AdamW.Param.of(name, value, g.get(name))));
        }

        @Override
        public List<AdamW.Param> params() {
            return params;
        }

        @Override
        public long[] rngStates() {
            return new long[] {noise.position(), dropout.position()};
        }

        @Override
        public void restoreRngs(long[] states) {
            noise = new NoiseStream(noiseKey, states[0]);
            dropout = new NoiseStream(dropoutKey, states[1]);
        }

        @Override
        public void microBatch(TokenDataset.Batch batch, long step, TrainingLoop.StepFigures f) {
            f.tau = 1;
            NoiseStream gateNoise = options.gates() == Gates.SAMPLE ? noise : null;
            try (GatedLlama.Tapes tapes = gated.forward(batch, gateNoise, 1.0, dropout)) {
                f.addKept(tapes);
                long n = tapes.tokens;
                f.add(tapes.nllSum / n, 0, tapes.gateSum / (2.0 * config.nLayers() * n), n);
                for (GatedLlama.Tape tape : tapes.all) gated.backward(tape, (float) (1.0 / n), 0f, null, null, grads);
            }
        }

        @Override
        public HeldOut evaluate() {
            return HeldOut.evaluate(config, base, backend, data.heldOut(), heldOutGate, loraOn.get());
        }

        @Override
        public String evalNote() {
            return "";
        }

        @Override
        public TrainingLoop.Stage.Result writeResult(HeldOut latest) throws IOException {
            loraOn.download();
            PeftDirectory.write(out, lora, baseModel);
            return new TrainingLoop.Stage.Result("wrote the adapter (PEFT) into " + out, latest != null ? latest : evaluate());
        }

        @Override
        public JsonObject hyper() {
            return options.toJson();
        }

        @Override
        public List<String> resumeKeys() {
            return List.of("targets", "rank", "lora_alpha", "dropout", "gates", "steps", "batch", "accum", "seed",
                    "gate_noise");
        }

        @Override
        public Map<String, Long> fingerprints() {
            return Map.of("routers", routersFingerprint);
        }
    }

    /** A hash of the routers' bits, so that a resume with other routers is refused. */
    private static long fingerprint(Routers routers) {
        long h = 1125899906842597L;
        for (Tensor t : List.of(routers.weight(), routers.bias())) {
            for (float v : t.toFloatArray()) h = 31 * h + Float.floatToIntBits(v);
        }
        return h;
    }
}
