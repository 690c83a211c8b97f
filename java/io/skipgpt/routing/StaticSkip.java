package io.skipgpt.routing;

import io.skipgpt.tensor.Tensor;
import java.util.Arrays;
import java.util.BitSet;

/**
 * A fixed set of skipped modules, the same for every token: the static baseline. Written as
 * {@code attn:2,mlp:4} or with ranges {@code attn:1-3,mlp:0}; layers count from 0.
 */
public final class StaticSkip implements Gate {
    private final BitSet attn;
    private final BitSet mlp;
    private final String spec;

    private StaticSkip(BitSet attn, BitSet mlp, String spec) {
        this.attn = attn;
        this.mlp = mlp;
        this.spec = spec;
    }

    /** Parses a skip list against a model with {@code layers} layers. */
    public static StaticSkip parse(String spec, int layers) {
        BitSet attn = new BitSet(), mlp = new BitSet();
        for (String item : spec.split(",")) {
            String s = item.strip();
            if (s.isEmpty()) continue;
            int colon = s.indexOf(':');
            if (colon < 0) throw bad(spec, "'" + s + "' is not KIND:LAYER");
            String kind = s.substring(0, colon).strip();
            BitSet target = switch (kind) {
                case "attn", "attention" -> attn;
                case "mlp" -> mlp;
                default -> throw bad(spec, "unknown module kind '" + kind + "' (use attn or mlp)");
            };
            String range = s.substring(colon + 1).strip();
            int dash = range.indexOf('-');
            int from, to;
            try {
                from = Integer.parseInt(dash < 0 ? range : range.substring(0, dash).strip());
                to = dash < 0 ? from : Integer.parseInt(range.substring(dash + 1).strip());
            } catch (NumberFormatException e) {
                throw bad(spec, "'" + range + "' is not a layer or a range FROM-TO");
            }
            if (from < 0 || to >= layers || from > to) {
                throw bad(spec, "layer " + range + " outside 0.." + (layers - 1));
            }
            target.set(from, to + 1);
        }
        return new StaticSkip(attn, mlp, spec);
    }

    private static IllegalArgumentException bad(String spec, String why) {
        return new IllegalArgumentException("--skip '" + spec + "': " + why);
    }

    public int skippedModules() {
        return attn.cardinality() + mlp.cardinality();
    }

    @Override
    public void decide(int layer, Tensor x, boolean[] keepAttn, boolean[] keepMlp) {
        Arrays.fill(keepAttn, 0, x.rows(), !attn.get(layer));
        Arrays.fill(keepMlp, 0, x.rows(), !mlp.get(layer));
    }

    @Override
    public String toString() {
        return "static skip " + spec;
    }
}
