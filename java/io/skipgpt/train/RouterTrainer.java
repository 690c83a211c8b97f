package io.skipgpt.train;

import com.google.gson.JsonObject;
import io.skipgpt.eval.Perplexity;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.routing.RouterFile;
import io.skipgpt.routing.RouterGate;
import io.skipgpt.routing.Routers;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Tensor;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Stage 1 of SkipGPT: router tuning with the base model frozen. Loss {@code CE + alpha·|(1 − T) − r|} where r is
 * the mean of all execute gates of the batch (every token, layer and both module kinds); hard Gumbel gates with
 * a straight-through gradient, tau annealed linearly 5 → 1 over the run; AdamW with clipping. Every
 * {@code checkpointEvery} steps the whole state (routers, optimizer moments, step, data position, noise
 * generator) is written atomically; {@code --resume} continues to exactly the result of an uninterrupted run.
 */
public final class RouterTrainer {
    /** Settings of a run. {@code accum} micro-batches of {@code batch} sequences make one optimizer step. */
    public record Options(double sparsity, int steps, int batch, int accum, double lr, String schedule, int warmup,
                          double alpha, double weightDecay, double clip, long seed, int evalEvery,
                          int checkpointEvery, boolean calibrate) {
        public Options {
            require(sparsity >= 0 && sparsity < 1, "--sparsity must be in [0, 1), got " + sparsity);
            require(steps > 0, "--steps must be positive");
            require(batch > 0 && accum > 0, "--batch and --accum must be positive");
            require(lr > 0, "--lr must be positive");
            require(schedule.equals("constant") || schedule.equals("cosine"), "--schedule must be constant or cosine");
            require(warmup >= 0, "--warmup must be >= 0");
            require(alpha >= 0, "--alpha must be >= 0");
            require(clip > 0, "--clip must be positive");
            require(evalEvery >= 0 && checkpointEvery >= 0, "--eval-every and --checkpoint-every must be >= 0");
        }

        JsonObject toJson() {
            JsonObject o = new JsonObject();
            o.addProperty("sparsity", sparsity);
            o.addProperty("steps", steps);
            o.addProperty("batch", batch);
            o.addProperty("accum", accum);
            o.addProperty("lr", lr);
            o.addProperty("schedule", schedule);
            o.addProperty("warmup", warmup);
            o.addProperty("alpha", alpha);
            o.addProperty("weight_decay", weightDecay);
            o.addProperty("clip", clip);
            o.addProperty("seed", seed);
            return o;
        }
    }

    /** Held-out figures with deterministic routing. */
    public record Eval(double nll, double ppl, double moduleSparsity, double[] attnKeep, double[] mlpKeep) {}

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

    static Path checkpoints(Path out) {
        return out.resolve("checkpoints");
    }

    /** Trains (or resumes when {@code resume} and a checkpoint exists), writes the routers and returns the final eval. */
    public Eval run(boolean resume) throws IOException {
        return runUntil(resume, options.steps());
    }

    /**
     * Like {@link #run}, but stops after step {@code stopAfter} as a killed process would (nothing written after
     * the last checkpoint; no router file), returning null. Tests interrupt runs this way.
     */
    Eval runUntil(boolean resume, long stopAfter) throws IOException {
        Files.createDirectories(out);
        LrSchedule schedule = options.schedule().equals("cosine")
                ? LrSchedule.cosine(options.lr(), options.warmup(), options.steps())
                : LrSchedule.constant(options.lr());
        LinearAnneal tau = LinearAnneal.gumbelTau(options.steps());
        try (Routers routers = Routers.initialise(config.nLayers(), config.dim(), options.seed());
                Tensor dWeight = Tensor.f32(config.nLayers() * 4, config.dim());
                Tensor dBias = Tensor.f32(config.nLayers() * 4, 1);
                AdamW adam = new AdamW(List.of(new AdamW.Param("router.weight", routers.weight(), dWeight, true),
                        new AdamW.Param("router.bias", routers.bias(), dBias, false)),
                        AdamW.Config.DEFAULT.withWeightDecay(options.weightDecay()))) {
            Rng noise = Rng.derived(options.seed(), 1);
            long start = 0;
            Optional<Path> latest = resume ? Checkpoint.latest(checkpoints(out)) : Optional.empty();
            if (latest.isPresent()) {
                try (Checkpoint.Loaded c = Checkpoint.load(latest.get())) {
                    checkCompatible(c);
                    routers.weight().copyFrom(c.tensors().get("router.weight"));
                    routers.bias().copyFrom(c.tensors().get("router.bias"));
                    adam.loadState(c.tensors(), c.state().optimizerStep());
                    data.seek(c.state().data());
                    noise = new Rng(c.state().rng()[0]);
                    start = c.state().step();
                }
                progress.printf("resuming from %s at step %d%n", latest.get(), start);
            } else if (resume) {
                progress.printf("--resume: no checkpoint in %s, starting fresh%n", checkpoints(out));
            }
            GatedLlama gated = new GatedLlama(config, weights, backend, routers);
            try (JsonlLog log = start > 0 ? JsonlLog.resume(out.resolve("train.jsonl"), start + 1)
                    : JsonlLog.create(out.resolve("train.jsonl"))) {
                for (long step = start; step < options.steps(); step++) {
                    long t0 = System.nanoTime();
                    double lr = schedule.lr(step), t = tau.at(step);
                    adam.zeroGrad();
                    StepFigures f = new StepFigures(config.nLayers());
                    for (int micro = 0; micro < options.accum(); micro++) {
                        microBatch(gated, data.nextBatch(options.batch()), noise, t, dWeight, dBias, f);
                    }
                    scale(dWeight, 1.0 / options.accum());
                    scale(dBias, 1.0 / options.accum());
                    double norm = adam.clipGradNorm(options.clip());
                    adam.step(lr);
                    double ms = (System.nanoTime() - t0) / 1e6;
                    JsonObject line = f.toJson(step + 1, options.accum(), lr, t, norm, ms);
                    log.append(line);
                    progress.printf("step %d/%d  loss %.4f  ce %.4f  penalty %.4f  tau %.2f  keep attn %.3f mlp %.3f  "
                                    + "lr %.2e  %.0f ms  %.0f tok/s%n", step + 1, options.steps(),
                            line.get("loss").getAsDouble(), line.get("ce").getAsDouble(),
                            line.get("penalty").getAsDouble(), t, f.attnKeep(), f.mlpKeep(), lr, ms,
                            f.tokens / (ms / 1000));
                    boolean last = step + 1 == options.steps();
                    if (options.evalEvery() > 0 && ((step + 1) % options.evalEvery() == 0 || last)) {
                        Eval e = evaluate(routers);
                        JsonObject ev = new JsonObject();
                        ev.addProperty("step", step + 1);
                        ev.addProperty("eval_nll", e.nll());
                        ev.addProperty("eval_ppl", e.ppl());
                        ev.addProperty("eval_sparsity", e.moduleSparsity());
                        log.append(ev);
                        progress.printf("eval at step %d: held-out ppl %.4f, realised sparsity %.4f (target %.4f)%n",
                                step + 1, e.ppl(), e.moduleSparsity(), options.sparsity());
                    }
                    if ((options.checkpointEvery() > 0 && (step + 1) % options.checkpointEvery() == 0) || last) {
                        save(routers, adam, step + 1, noise);
                    }
                    if (step + 1 == stopAfter && !last) return null;
                }
            }
            if (options.calibrate()) {
                RouterFile.write(rawRoutersFile(out), routers);
                Eval before = evaluate(routers);
                double delta = calibrate(routers, CALIBRATION_SEQUENCES);
                progress.printf("calibrated the execute threshold by %.4f on %d training sequences: held-out sparsity "
                        + "%.4f -> %.4f%n", delta, CALIBRATION_SEQUENCES, before.moduleSparsity(),
                        evaluate(routers).moduleSparsity());
            }
            RouterFile.write(routersFile(out), routers);
            progress.printf("wrote %s%n", routersFile(out));
            return evaluate(routers);
        }
    }

    // One micro-batch: forward every sequence (gates sampled), then the batch's CE and sparsity ratio r, then
    // backward every sequence with CE weight 1/N and the penalty's gradient on every gate.
    private void microBatch(GatedLlama gated, TokenDataset.Batch batch, Rng noise, double tau, Tensor dWeight,
                            Tensor dBias, StepFigures f) {
        GatedLlama.Tape[] tapes = new GatedLlama.Tape[batch.size()];
        try {
            double nll = 0, gates = 0;
            long tokens = 0;
            for (int s = 0; s < batch.size(); s++) {
                tapes[s] = gated.forward(batch.inputs()[s], batch.targets()[s], noise, tau);
                nll += tapes[s].nllSum();
                gates += tapes[s].gateSum();
                tokens += tapes[s].n;
                for (int l = 0; l < config.nLayers(); l++) {
                    long[] k = tapes[s].keptCounts(l);
                    f.attnKept[l] += k[0];
                    f.mlpKept[l] += k[1];
                }
            }
            double decisions = 2.0 * config.nLayers() * tokens;
            double r = gates / decisions;
            double gap = (1 - options.sparsity()) - r;
            double ce = nll / tokens;
            f.add(ce, options.alpha() * Math.abs(gap), r, tokens);
            // d(alpha·|c − r|)/dg = alpha·sign(r − c)/decisions for every gate (straight-through).
            float gateGrad = (float) (options.alpha() * Math.signum(-gap) / decisions);
            for (GatedLlama.Tape t : tapes) gated.backward(t, (float) (1.0 / tokens), gateGrad, dWeight, dBias);
        } finally {
            for (GatedLlama.Tape t : tapes) if (t != null) t.close();
        }
    }

    /**
     * Threshold calibration: with deterministic routing a module runs iff z_exec > z_skip, which rounds the
     * probabilities training sampled from, so the realised sparsity usually falls short of the target. This finds
     * one shift delta, subtracted from every execute bias (execute iff z_exec − delta > z_skip), that brings the
     * deterministic sparsity on the first {@code sequences} training sequences to the target (bisection; the
     * sparsity grows with delta). Held-out data is not looked at. Returns delta.
     */
    public double calibrate(Routers routers, int sequences) {
        TokenDataset.Batch calib = data.trainHead(sequences);
        double lo = -30, hi = 30;
        float[] base = routers.bias().toFloatArray();
        for (int it = 0; it < 30; it++) {
            double mid = (lo + hi) / 2;
            shiftExecute(routers, base, mid);
            if (evaluateOn(routers, calib).moduleSparsity() < options.sparsity()) lo = mid;
            else hi = mid;
        }
        double delta = (lo + hi) / 2;
        shiftExecute(routers, base, delta);
        return delta;
    }

    private void shiftExecute(Routers routers, float[] base, double delta) {
        for (int l = 0; l < config.nLayers(); l++) {
            for (int ch : new int[] {Routers.ATTN_EXECUTE, Routers.MLP_EXECUTE}) {
                routers.bias().set(4L * l + ch, (float) (base[4 * l + ch] - delta));
            }
        }
    }

    /** Held-out perplexity and realised sparsity with deterministic routing, the way inference runs. */
    public Eval evaluate(Routers routers) {
        return evaluateOn(routers, data.heldOut());
    }

    Eval evaluateOn(Routers routers, TokenDataset.Batch held) {
        RoutingStats stats = new RoutingStats(config);
        try (LlamaModel model = new LlamaModel(config, weights, backend);
                RouterGate gate = new RouterGate(routers, backend, RouterGate.Mode.DETERMINISTIC, 0)) {
            Routing routing = Routing.routed(gate, stats);
            Perplexity.Result total = new Perplexity.Result(0, 0, 0);
            for (int s = 0; s < held.size(); s++) {
                int[] in = held.inputs()[s], tg = held.targets()[s];
                int[] ids = java.util.Arrays.copyOf(in, in.length + 1);
                ids[in.length] = tg[tg.length - 1];
                total = total.plus(new Perplexity(model, null, ids.length, routing).scoreIds(ids));
            }
            return new Eval(total.meanNll(), total.ppl(), stats.moduleSparsity(), stats.attnKeep(), stats.mlpKeep());
        }
    }

    private void save(Routers routers, AdamW adam, long step, Rng noise) throws IOException {
        Map<String, Tensor> tensors = new java.util.LinkedHashMap<>();
        tensors.put("router.weight", routers.weight());
        tensors.put("router.bias", routers.bias());
        tensors.putAll(adam.state());
        JsonObject extra = new JsonObject();
        extra.addProperty("data_fingerprint", data.fingerprint());
        extra.addProperty("layers", config.nLayers());
        extra.addProperty("dim", config.dim());
        Checkpoint.State state = new Checkpoint.State(step, adam.steps(), data.cursor(), new long[] {noise.state()},
                options.toJson(), extra);
        Checkpoint.save(checkpoints(out), state, tensors, 2);
    }

    private void checkCompatible(Checkpoint.Loaded c) throws IOException {
        JsonObject extra = c.state().extra();
        if (extra.get("layers").getAsInt() != config.nLayers() || extra.get("dim").getAsInt() != config.dim()) {
            throw new IOException(c.dir() + ": checkpoint was made for another model (layers "
                    + extra.get("layers") + ", dim " + extra.get("dim") + ")");
        }
        if (extra.get("data_fingerprint").getAsLong() != data.fingerprint()) {
            throw new IOException(c.dir() + ": checkpoint was made with other training data or --seq-len/--seed; "
                    + "resume with the same --data, --seq-len and --seed");
        }
        JsonObject hyper = c.state().hyper();
        JsonObject now = options.toJson();
        for (String key : List.of("sparsity", "steps", "batch", "accum", "alpha", "seed")) {
            if (!hyper.get(key).equals(now.get(key))) {
                throw new IOException(c.dir() + ": checkpoint has " + key + " = " + hyper.get(key) + ", this run "
                        + now.get(key) + "; resume with the same settings");
            }
        }
    }

    private static void scale(Tensor t, double s) {
        if (s == 1) return;
        for (long i = 0; i < t.size(); i++) t.set(i, (float) (t.get(i) * s));
    }

    private static void require(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException(message);
    }

    /** Running figures of one optimizer step over its micro-batches. */
    private static final class StepFigures {
        double ce, penalty, r;
        long tokens;
        int micro;
        final long[] attnKept, mlpKept;

        StepFigures(int layers) {
            attnKept = new long[layers];
            mlpKept = new long[layers];
        }

        void add(double ce, double penalty, double r, long tokens) {
            this.ce += ce;
            this.penalty += penalty;
            this.r += r;
            this.tokens += tokens;
            micro++;
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

        JsonObject toJson(long step, int accum, double lr, double tau, double gradNorm, double ms) {
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
