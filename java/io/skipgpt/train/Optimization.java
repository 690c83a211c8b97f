package io.skipgpt.train;

import com.google.gson.JsonObject;

/**
 * How a training stage optimises, the settings both stages share: {@code accum} micro-batches of {@code batch}
 * sequences make one of {@code steps} AdamW steps at a peak learning rate {@code lr}, held ("constant") or after
 * {@code warmup} steps decayed ("cosine"); gradients clipped to a global norm of {@code clip}; a held-out
 * evaluation every {@code evalEvery} steps and a checkpoint every {@code checkpointEvery} (0: never).
 */
public record Optimization(int steps, int batch, int accum, double lr, String schedule, int warmup, double weightDecay,
                           double clip, long seed, int evalEvery, int checkpointEvery) {
    public Optimization {
        require(steps > 0, "--steps must be positive");
        require(batch > 0 && accum > 0, "--batch and --accum must be positive");
        require(lr > 0, "--lr must be positive");
        require(schedule.equals("constant") || schedule.equals("cosine"), "--schedule must be constant or cosine");
        require(warmup >= 0 && warmup <= steps, "--warmup must be in [0, --steps]");
        require(weightDecay >= 0, "--weight-decay must be >= 0");
        require(clip > 0, "--clip must be positive");
        require(evalEvery >= 0 && checkpointEvery >= 0, "--eval-every and --checkpoint-every must be >= 0");
    }

    TrainingLoop.Settings settings() {
        LrSchedule lrs = schedule.equals("cosine") ? LrSchedule.cosine(lr, warmup, steps) : LrSchedule.constant(lr);
        return new TrainingLoop.Settings(steps, batch, accum, lrs, weightDecay, clip, evalEvery, checkpointEvery);
    }

    /**
     * Adds these settings to a checkpoint's hyper-parameters, with the generator the gate noise is drawn from: a
     * checkpoint made with another one cannot be resumed exactly, so resuming it is refused.
     */
    void addTo(JsonObject hyper) {
        hyper.addProperty("steps", steps);
        hyper.addProperty("batch", batch);
        hyper.addProperty("accum", accum);
        hyper.addProperty("lr", lr);
        hyper.addProperty("schedule", schedule);
        hyper.addProperty("warmup", warmup);
        hyper.addProperty("weight_decay", weightDecay);
        hyper.addProperty("clip", clip);
        hyper.addProperty("seed", seed);
        hyper.addProperty("gate_noise", GATE_NOISE);
    }

    /**
     * Where the gates' noise and the adapter's dropout masks come from (earlier versions drew them on the host, from
     * SplitMix64, or the masks only).
     */
    static final String GATE_NOISE = "philox4x32-10 gates and dropout";

    private static void require(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException(message);
    }
}
