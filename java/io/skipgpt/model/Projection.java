package io.skipgpt.model;

import io.skipgpt.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** The seven linear projections of a decoder layer, named as adapters name their targets: q, k, v, o, gate, up, down. */
public enum Projection {
    Q, K, V, O, GATE, UP, DOWN;

    /** The short name: q, k, v, o, gate, up or down. */
    public String shortName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Columns of the weight: the width of the rows it reads. */
    public int inDim(LlamaConfig c) {
        return switch (this) {
            case Q, K, V, GATE, UP -> c.dim();
            case O -> c.nHeads() * c.headDim();
            case DOWN -> c.hiddenDim();
        };
    }

    /** Rows of the weight: the width of the rows it writes. */
    public int outDim(LlamaConfig c) {
        return switch (this) {
            case Q -> c.nHeads() * c.headDim();
            case K, V -> c.kvDim();
            case O, DOWN -> c.dim();
            case GATE, UP -> c.hiddenDim();
        };
    }

    /** This projection's weight [outDim, inDim] in a layer. */
    public Tensor of(LlamaWeights.Layer layer) {
        return switch (this) {
            case Q -> layer.wq();
            case K -> layer.wk();
            case V -> layer.wv();
            case O -> layer.wo();
            case GATE -> layer.wGate();
            case UP -> layer.wUp();
            case DOWN -> layer.wDown();
        };
    }

    /** Parses a comma-separated list of short names ("q,v,gate"), in the order given, without repeats. */
    public static List<Projection> parseList(String list) {
        List<Projection> out = new ArrayList<>();
        for (String item : list.split(",")) {
            String s = item.strip().toLowerCase(Locale.ROOT);
            if (s.isEmpty()) continue;
            Projection p = null;
            for (Projection candidate : values()) if (candidate.shortName().equals(s)) p = candidate;
            if (p == null) throw new IllegalArgumentException("unknown projection '" + s + "' in '" + list
                    + "' (use q, k, v, o, gate, up, down)");
            if (out.contains(p)) throw new IllegalArgumentException("projection '" + s + "' given twice in '" + list + "'");
            out.add(p);
        }
        if (out.isEmpty()) throw new IllegalArgumentException("no projections in '" + list + "'");
        return List.copyOf(out);
    }
}
