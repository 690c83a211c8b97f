package io.skipgpt.train;

/**
 * A value moving linearly from {@code start} at step 0 to {@code end} at step {@code totalSteps - 1}, and held at
 * the ends outside that range: the Gumbel temperature of stage 1 goes from 5 to 1 over its optimizer steps.
 */
public record LinearAnneal(double start, double end, long totalSteps) {
    public LinearAnneal {
        if (!Double.isFinite(start) || !Double.isFinite(end)) {
            throw new IllegalArgumentException("anneal ends must be finite, got " + start + " and " + end);
        }
        if (totalSteps < 1) throw new IllegalArgumentException("total steps must be at least 1, got " + totalSteps);
    }

    /** The stage-1 Gumbel-softmax temperature: 5 -> 1 (DESIGN.md section 1). */
    public static LinearAnneal gumbelTau(long totalSteps) {
        return new LinearAnneal(5, 1, totalSteps);
    }

    public double at(long step) {
        double t = (double) step / Math.max(1, totalSteps - 1);
        t = Math.max(0, Math.min(1, t));
        return start + (end - start) * t;
    }
}
