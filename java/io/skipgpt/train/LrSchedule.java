package io.skipgpt.train;

/**
 * Learning rate per optimizer step (0-based): the caller asks {@code lr(step)} before each {@link AdamW#step}.
 * Records, so a trainer can write the schedule into a checkpoint's hyper-parameters as it is.
 */
public sealed interface LrSchedule {
    double lr(long step);

    static LrSchedule constant(double lr) {
        return new Constant(lr);
    }

    /** Cosine decay to 0 after a linear warm-up. */
    static LrSchedule cosine(double peak, long warmupSteps, long totalSteps) {
        return new Cosine(peak, warmupSteps, totalSteps, 0);
    }

    record Constant(double value) implements LrSchedule {
        public Constant {
            checkLr(value);
        }

        @Override
        public double lr(long step) {
            checkStep(step);
            return value;
        }
    }

    /**
     * Linear warm-up from 0 to {@code peak} over {@code warmupSteps}, then a half cosine from {@code peak} down to
     * {@code peak * minRatio} at {@code totalSteps}, constant after. The same numbers as Hugging Face's
     * {@code get_cosine_with_min_lr_schedule_with_warmup} (the reference code trains with its Trainer): step 0 of a
     * warm-up has lr 0, step {@code warmupSteps} has the peak.
     */
    record Cosine(double peak, long warmupSteps, long totalSteps, double minRatio) implements LrSchedule {
        public Cosine {
            checkLr(peak);
            if (totalSteps < 1) throw new IllegalArgumentException("total steps must be at least 1, got " + totalSteps);
            if (warmupSteps < 0 || warmupSteps > totalSteps) {
                throw new IllegalArgumentException("warm-up steps must be in [0, " + totalSteps + "], got " + warmupSteps);
            }
            if (!(minRatio >= 0 && minRatio <= 1)) throw new IllegalArgumentException("min lr ratio must be in [0, 1], got " + minRatio);
        }

        @Override
        public double lr(long step) {
            checkStep(step);
            if (step < warmupSteps) return peak * step / warmupSteps;
            double progress = Math.min(1.0, (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
            double cosine = 0.5 * (1 + Math.cos(Math.PI * progress));
            return peak * (minRatio + (1 - minRatio) * cosine);
        }
    }

    private static void checkLr(double lr) {
        if (!(lr >= 0) || Double.isInfinite(lr)) throw new IllegalArgumentException("learning rate must be a finite number >= 0, got " + lr);
    }

    private static void checkStep(long step) {
        if (step < 0) throw new IllegalArgumentException("step must be >= 0, got " + step);
    }
}
