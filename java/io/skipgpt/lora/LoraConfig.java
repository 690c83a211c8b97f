package io.skipgpt.lora;

import io.skipgpt.model.Projection;
import java.util.List;

/**
 * The shape of a LoRA adapter: which projections of every layer it adapts, its rank r, alpha (the term is scaled
 * by alpha / r, as PEFT scales it) and the dropout applied to the adapter's input in training.
 */
public record LoraConfig(List<Projection> targets, int rank, double alpha, double dropout) {
    /** The largest rank the kernels take. */
    public static final int MAX_RANK = 256;

    /** SkipGPT's stage 2: q, v and the MLP gate projection, rank 16, alpha 32, dropout 0.1. */
    public static final LoraConfig DEFAULT = new LoraConfig(List.of(Projection.Q, Projection.V, Projection.GATE), 16, 32, 0.1);

    public LoraConfig {
        targets = List.copyOf(targets);
        if (targets.isEmpty()) throw new IllegalArgumentException("a LoRA adapter needs at least one target projection");
        if (targets.stream().distinct().count() != targets.size()) {
            throw new IllegalArgumentException("LoRA targets " + targets + " repeat a projection");
        }
        if (rank < 1 || rank > MAX_RANK) throw new IllegalArgumentException("LoRA rank must be in [1, " + MAX_RANK + "], got " + rank);
        if (!(alpha > 0) || Double.isInfinite(alpha)) throw new IllegalArgumentException("LoRA alpha must be a finite number > 0, got " + alpha);
        if (!(dropout >= 0 && dropout < 1)) throw new IllegalArgumentException("LoRA dropout must be in [0, 1), got " + dropout);
    }

    /** alpha / r: the factor of the adapter's term. */
    public float scale() {
        return (float) (alpha / rank);
    }

    /** The targets as their short names, comma-separated: "q,v,gate". */
    public String targetList() {
        return String.join(",", targets.stream().map(Projection::shortName).toList());
    }
}
