package io.skipgpt.train;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Tensor;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The optimisation loop both SkipGPT stages share. Per step: run {@code accum} micro-batches (the stage's forward
 * and backward), then AdamW with the scheduled learning rate on the gradients averaged over the micro-batches and
 * clipped, and zero the gradients; one JSONL line and one progress line; a held-out evaluation every
 * {@code evalEvery} steps; every {@code checkpointEvery} steps (and at the end) the whole state — trainable tensors,
 * optimizer moments, step, data position, random generators — saved atomically, so a resumed run continues to
 * exactly the result of an uninterrupted one. At the end the stage writes its result and the final held-out figures
 * are returned.
 *
 * <p>The trainable tensors, their gradients and the optimizer's moments stay on the backend's device for the whole
 * run: the average and the clipping factor are folded into the update ({@link AdamW#step(double, double)}), so a step
 * brings back only the gradient norm. Checkpoints copy the tensors to the host; a step whose gradient norm is not
 * finite is skipped (the gradients are zeroed, the parameters and moments left as they are).
 */
final class TrainingLoop {
    /** What one stage trains, and how. */
    interface Stage {
        /**
         * The trainable tensors with their gradients, on the backend's device, where the passes use them; names are
         * checkpoint names. They are the master copies: a stage that keeps host copies (to evaluate, to write its
         * result) refreshes them from these when it needs them.
         */
        List<AdamW.Param> params();

        /** The states of the stage's random generators, in a fixed order (they go into checkpoints). */
        long[] rngStates();

        void restoreRngs(long[] states);

        /** Forward and backward of one micro-batch at a step: adds into the gradients, counts into {@code f}. */
        void microBatch(TokenDataset.Batch batch, long step, StepFigures f);

        /** Held-out figures with the parameters as they stand. */
        HeldOut evaluate();

        /** Appended to the evaluation's progress line (a target, say); may be empty. */
        String evalNote();

        /**
         * Writes the stage's result files; returns a line naming them and the held-out figures of the result.
         * {@code latest} is the evaluation of the last step, or null when none ran: the figures of the parameters
         * as trained, for a stage to return instead of evaluating them again.
         */
        Result writeResult(HeldOut latest) throws IOException;

        record Result(String line, HeldOut heldOut) {}

        /** The settings written into each checkpoint; those named by {@link #resumeKeys} must match to resume. */
        JsonObject hyper();

        List<String> resumeKeys();

        /** Facts a checkpoint must agree on besides the model shape and the data (frozen inputs, say). */
        Map<String, Long> fingerprints();
    }

    /** The stage-independent settings of a run. */
    record Settings(int steps, int batch, int accum, LrSchedule schedule, double weightDecay, double clip,
                    int evalEvery, int checkpointEvery) {}

    private final LlamaConfig config;
    private final Backend backend;
    private final TokenDataset data;
    private final Settings settings;
    private final Path out;
    private final PrintStream progress;

    TrainingLoop(LlamaConfig config, Backend backend, TokenDataset data, Settings settings, Path out,
                 PrintStream progress) {
        this.config = config;
        this.backend = backend;
        this.data = data;
        this.settings = settings;
        this.out = out;
        this.progress = progress;
    }

    private static Path checkpoints(Path out) {
        return out.resolve("checkpoints");
    }

    /**
     * Trains (or resumes when {@code resume} and a checkpoint exists), lets the stage write its result and returns
     * the final held-out figures. Stops after step {@code stopAfter} as a killed process would (nothing written
     * after the last checkpoint, no result), returning null: tests interrupt runs this way.
     */
    HeldOut run(Stage stage, boolean resume, long stopAfter) throws IOException {
        Files.createDirectories(out);
        AdamW.Config adamConfig = AdamW.Config.DEFAULT.withWeightDecay(settings.weightDecay());
        try (AdamW adam = new AdamW(backend, stage.params(), adamConfig)) {
            long start = 0;
            Optional<Path> latest = resume ? Checkpoint.latest(checkpoints(out)) : Optional.empty();
            if (latest.isPresent()) {
                try (Checkpoint.Loaded c = Checkpoint.load(latest.get())) {
                    checkCompatible(c, stage);
                    for (AdamW.Param p : stage.params()) {
                        if (!c.tensors().containsKey(p.name())) throw new IOException(c.dir() + ": checkpoint has no " + p.name());
                        backend.copy(p.value(), c.tensors().get(p.name()));
                    }
                    adam.loadState(c.tensors(), c.state().optimizerStep());
                    data.seek(c.state().data());
                    stage.restoreRngs(c.state().rng());
                    start = c.state().step();
                }
                progress.printf("resuming from %s at step %d%n", latest.get(), start);
            } else if (resume) {
                progress.printf("--resume: no checkpoint in %s, starting fresh%n", checkpoints(out));
            }
            adam.zeroGrad();
            HeldOut lastEvaluation = null; // the last step's, when one runs
            try (JsonlLog log = start > 0 ? JsonlLog.resume(out.resolve("train.jsonl"), start + 1)
                    : JsonlLog.create(out.resolve("train.jsonl"))) {
                for (long step = start; step < settings.steps(); step++) {
                    long t0 = System.nanoTime();
                    double lr = settings.schedule().lr(step);
                    StepFigures f = new StepFigures(config.nLayers());
                    for (int micro = 0; micro < settings.accum(); micro++) {
                        stage.microBatch(data.nextBatch(settings.batch()), step, f);
                    }
                    // The gradients hold sums over the micro-batches; clipping is of their mean. Its norm is the sum's
                    // over accum: the norm of the mean stored in float32 exactly when accum is a power of two, to the
                    // last bits otherwise.
                    double mean = 1.0 / settings.accum(), norm = adam.gradNorm() * mean;
                    if (Double.isFinite(norm)) {
                        adam.step(lr, mean * AdamW.clipFactor(norm, settings.clip()));
                    } else {
                        progress.printf("step %d: gradient norm %s, update skipped%n", step + 1, norm);
                    }
                    adam.zeroGrad();
                    double ms = (System.nanoTime() - t0) / 1e6;
                    JsonObject line = f.toJson(step + 1, lr, norm, ms);
                    log.append(line);
                    progress.printf("step %d/%d  loss %.4f  ce %.4f  penalty %.4f  tau %.2f  keep attn %.3f mlp %.3f  "
                                    + "lr %.2e  %.0f ms  %.0f tok/s%n", step + 1, settings.steps(),
                            line.get("loss").getAsDouble(), line.get("ce").getAsDouble(),
                            line.get("penalty").getAsDouble(), f.tau, f.attnKeep(), f.mlpKeep(), lr, ms,
                            f.tokens / (ms / 1000));
                    boolean last = step + 1 == settings.steps();
                    if (settings.evalEvery() > 0 && ((step + 1) % settings.evalEvery() == 0 || last)) {
                        HeldOut e = stage.evaluate();
                        if (last) lastEvaluation = e;
                        JsonObject ev = new JsonObject();
                        ev.addProperty("step", step + 1);
                        ev.addProperty("eval_nll", e.nll());
                        ev.addProperty("eval_ppl", e.ppl());
                        ev.addProperty("eval_sparsity", e.moduleSparsity());
                        log.append(ev);
                        progress.printf("eval at step %d: held-out ppl %.4f, realised sparsity %.4f%s%n", step + 1,
                                e.ppl(), e.moduleSparsity(), stage.evalNote());
                    }
                    if ((settings.checkpointEvery() > 0 && (step + 1) % settings.checkpointEvery() == 0) || last) {
                        save(stage, adam, step + 1);
                    }
                    if (step + 1 == stopAfter && !last) return null;
                }
            }
            Stage.Result result = stage.writeResult(lastEvaluation);
            progress.println(result.line());
            return result.heldOut();
        }
    }

    // The parameters and the moments come to the host for the file, and are freed after it.
    private void save(Stage stage, AdamW adam, long step) throws IOException {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try {
            for (AdamW.Param p : stage.params()) tensors.put(p.name(), backend.download(p.value()));
            tensors.putAll(adam.state());
            JsonObject extra = new JsonObject();
            extra.addProperty("data_fingerprint", data.fingerprint());
            extra.addProperty("layers", config.nLayers());
            extra.addProperty("dim", config.dim());
            stage.fingerprints().forEach(extra::addProperty);
            Checkpoint.State state = new Checkpoint.State(step, adam.steps(), data.cursor(), stage.rngStates(),
                    stage.hyper(), extra);
            Checkpoint.save(checkpoints(out), state, tensors, 2);
        } finally {
            tensors.values().forEach(Tensor::close);
        }
    }

    private void checkCompatible(Checkpoint.Loaded c, Stage stage) throws IOException {
        JsonObject extra = c.state().extra();
        if (extra.get("layers").getAsInt() != config.nLayers() || extra.get("dim").getAsInt() != config.dim()) {
            throw new IOException(c.dir() + ": checkpoint was made for another model (layers "
                    + extra.get("layers") + ", dim " + extra.get("dim") + ")");
        }
        if (extra.get("data_fingerprint").getAsLong() != data.fingerprint()) {
            throw new IOException(c.dir() + ": checkpoint was made with other training data or --seq-len/--seed; "
                    + "resume with the same --data, --seq-len and --seed");
        }
        for (Map.Entry<String, Long> f : stage.fingerprints().entrySet()) {
            JsonElement saved = extra.get(f.getKey());
            if (saved == null || saved.getAsLong() != f.getValue()) {
                throw new IOException(c.dir() + ": checkpoint was made with other " + f.getKey().replace('_', ' ')
                        + "; resume with the same inputs");
            }
        }
        JsonObject hyper = c.state().hyper();
        JsonObject now = stage.hyper();
        for (String key : stage.resumeKeys()) {
            if (!now.get(key).equals(hyper.get(key))) {
                throw new IOException(c.dir() + ": checkpoint has " + key + " = " + hyper.get(key) + ", this run "
                        + now.get(key) + "; resume with the same settings");
            }
        }
    }

    /** Running figures of one optimizer step over its micro-batches. */
    static final class StepFigures {
        double ce, penalty, r, tau;
        long tokens;
        int micro;
        final long[] attnKept, mlpKept;

        StepFigures(int layers) {
            attnKept = new long[layers];
            mlpKept = new long[layers];
        }

        /** One micro-batch: its mean CE, penalty, keep ratio and token count. */
        void add(double ce, double penalty, double r, long tokens) {
            this.ce += ce;
            this.penalty += penalty;
            this.r += r;
            this.tokens += tokens;
            micro++;
        }

        /** Adds one sequence's per-layer execute counts. */
        void addKept(GatedLlama.Tapes tapes) {
            for (GatedLlama.Tape t : tapes.all) {
                for (int l = 0; l < attnKept.length; l++) {
                    long[] k = t.keptCounts(l);
                    attnKept[l] += k[0];
                    mlpKept[l] += k[1];
                }
            }
        }

        double attnKeep() {
            return rate(attnKept);
        }

        double mlpKeep() {
            return rate(mlpKept);
        }

        private double rate(long[] kept) {
            long s = 0;
            for (long k : kept) s += k;
            return tokens == 0 ? 0 : (double) s / (tokens * kept.length);
        }

        JsonObject toJson(long step, double lr, double gradNorm, double ms) {
            JsonObject o = new JsonObject();
            o.addProperty("step", step);
            o.addProperty("loss", (ce + penalty) / micro);
            o.addProperty("ce", ce / micro);
            o.addProperty("penalty", penalty / micro);
            o.addProperty("keep_ratio", r / micro);
            o.addProperty("sparsity", 1 - r / micro);
            o.addProperty("attn_keep", attnKeep());
            o.addProperty("mlp_keep", mlpKeep());
            o.addProperty("tau", tau);
            o.addProperty("lr", lr);
            o.addProperty("grad_norm", gradNorm);
            o.addProperty("ms", ms);
            o.addProperty("tokens_per_s", tokens / (ms / 1000));
            return o;
        }
    }
}
