package io.skipgpt.train;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import io.skipgpt.model.LlamaConfig;
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
 * and backward), average, clip, AdamW with the scheduled learning rate, zero the gradients; one JSONL line and
 * one progress line; a held-out evaluation every {@code evalEvery} steps; every {@code checkpointEvery} steps (and
 * at the end) the whole state — trainable tensors, optimizer moments, step, data position, random generators —
 * saved atomically, so a resumed run continues to exactly the result of an uninterrupted one. At the end the stage
 * writes its result and the final held-out figures are returned.
 *
 * <p>AdamW, clipping and checkpoints work on the host tensors of {@link Stage#params}. A stage whose passes run on
 * a device keeps copies there; the loop has it sync them once per step ({@link Stage#toBackend},
 * {@link Stage#gradsToHost}).
 */
final class TrainingLoop {
    /** What one stage trains, and how. */
    interface Stage {
        /** The trainable tensors with their gradients, on the host; names are checkpoint names. */
        List<AdamW.Param> params();

        /**
         * Before the first step and after each optimizer step, with params() as AdamW left them and their gradients
         * zero: copy both to where the passes use them (nothing to do where the passes use params() themselves).
         */
        void toBackend();

        /** After a step's micro-batches: copy the gradients they added up into params()' gradients (or nothing). */
        void gradsToHost();

        /** The states of the stage's random generators, in a fixed order (they go into checkpoints). */
        long[] rngStates();

        void restoreRngs(long[] states);

        /** Forward and backward of one micro-batch at a step: adds into the gradients, counts into {@code f}. */
        void microBatch(TokenDataset.Batch batch, long step, StepFigures f);

        /** Held-out figures with the parameters as they stand. */
        HeldOut evaluate();

        /** Appended to the evaluation's progress line (a target, say); may be empty. */
        String evalNote();

        /** Writes the stage's result files and returns a line naming them. */
        String writeResult() throws IOException;

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
    private final TokenDataset data;
    private final Settings settings;
    private final Path out;
    private final PrintStream progress;

    TrainingLoop(LlamaConfig config, TokenDataset data, Settings settings, Path out, PrintStream progress) {
        this.config = config;
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
        try (AdamW adam = new AdamW(stage.params(), AdamW.Config.DEFAULT.withWeightDecay(settings.weightDecay()))) {
            long start = 0;
            Optional<Path> latest = resume ? Checkpoint.latest(checkpoints(out)) : Optional.empty();
            if (latest.isPresent()) {
                try (Checkpoint.Loaded c = Checkpoint.load(latest.get())) {
                    checkCompatible(c, stage);
                    for (AdamW.Param p : stage.params()) {
                        if (!c.tensors().containsKey(p.name())) throw new IOException(c.dir() + ": checkpoint has no " + p.name());
                        p.value().copyFrom(c.tensors().get(p.name()));
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
            stage.toBackend();
            try (JsonlLog log = start > 0 ? JsonlLog.resume(out.resolve("train.jsonl"), start + 1)
                    : JsonlLog.create(out.resolve("train.jsonl"))) {
                for (long step = start; step < settings.steps(); step++) {
                    long t0 = System.nanoTime();
                    double lr = settings.schedule().lr(step);
                    StepFigures f = new StepFigures(config.nLayers());
                    for (int micro = 0; micro < settings.accum(); micro++) {
                        stage.microBatch(data.nextBatch(settings.batch()), step, f);
                    }
                    stage.gradsToHost();
                    if (settings.accum() > 1) for (AdamW.Param p : stage.params()) scale(p.grad(), 1.0 / settings.accum());
                    double norm = adam.clipGradNorm(settings.clip());
                    adam.step(lr);
                    adam.zeroGrad();
                    stage.toBackend();
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
            progress.println(stage.writeResult());
            return stage.evaluate();
        }
    }

    private void save(Stage stage, AdamW adam, long step) throws IOException {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (AdamW.Param p : stage.params()) tensors.put(p.name(), p.value());
        tensors.putAll(adam.state());
        JsonObject extra = new JsonObject();
        extra.addProperty("data_fingerprint", data.fingerprint());
        extra.addProperty("layers", config.nLayers());
        extra.addProperty("dim", config.dim());
        stage.fingerprints().forEach(extra::addProperty);
        Checkpoint.State state = new Checkpoint.State(step, adam.steps(), data.cursor(), stage.rngStates(),
                stage.hyper(), extra);
        Checkpoint.save(checkpoints(out), state, tensors, 2);
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

    private static void scale(Tensor t, double s) {
        for (long i = 0; i < t.size(); i++) t.set(i, (float) (t.get(i) * s));
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
        void addKept(GatedLlama.Tape t, int layers) {
            for (int l = 0; l < layers; l++) {
                long[] k = t.keptCounts(l);
                attnKept[l] += k[0];
                mlpKept[l] += k[1];
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
