package io.skipgpt.io;

import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/** Every weight of a LLaMA by role; formats map each (slot, layer) to their own tensor name. */
enum WeightSlot {
    EMBEDDING(false),
    OUTPUT_NORM(false),
    OUTPUT(false),
    ATTN_NORM(true),
    WQ(true),
    WK(true),
    WV(true),
    WO(true),
    FFN_NORM(true),
    GATE(true),
    UP(true),
    DOWN(true);

    /** True for the per-layer slots (their names take a layer index). */
    final boolean perLayer;

    WeightSlot(boolean perLayer) {
        this.perLayer = perLayer;
    }

    /** One weight of a model: a slot and, for per-layer slots, the layer. */
    record Entry(WeightSlot slot, int layer) {}

    /**
     * Every weight of a model in the order files store them: embedding, each layer's weights in turn, final norm,
     * then the output head unless it is tied.
     */
    static List<Entry> fileOrder(int nLayers, boolean tied) {
        List<Entry> out = new ArrayList<>();
        out.add(new Entry(EMBEDDING, 0));
        for (int layer = 0; layer < nLayers; layer++) {
            for (WeightSlot s : values()) if (s.perLayer) out.add(new Entry(s, layer));
        }
        out.add(new Entry(OUTPUT_NORM, 0));
        if (!tied) out.add(new Entry(OUTPUT, 0));
        return out;
    }

    /** A format's tensor name for a slot; {@code layer} is ignored for the global slots. */
    interface Naming {
        String name(WeightSlot slot, int layer);
    }

    /** The row-major shape of this slot's tensor (per layer for the per-layer slots). */
    int[] shape(LlamaConfig c) {
        int d = c.dim(), q = c.nHeads() * c.headDim(), kv = c.kvDim(), h = c.hiddenDim();
        return switch (this) {
            case EMBEDDING, OUTPUT -> new int[] {c.vocabSize(), d};
            case OUTPUT_NORM, ATTN_NORM, FFN_NORM -> new int[] {d};
            case WQ -> new int[] {q, d};
            case WK, WV -> new int[] {kv, d};
            case WO -> new int[] {d, q};
            case GATE, UP -> new int[] {h, d};
            case DOWN -> new int[] {d, h};
        };
    }

    /** The tensor of this slot in {@code w} ({@code layer} ignored for the global slots). */
    Tensor of(LlamaWeights w, int layer) {
        return switch (this) {
            case EMBEDDING -> w.tokenEmbedding();
            case OUTPUT_NORM -> w.outputNorm();
            case OUTPUT -> w.output();
            case ATTN_NORM -> w.layers().get(layer).attnNorm();
            case WQ -> w.layers().get(layer).wq();
            case WK -> w.layers().get(layer).wk();
            case WV -> w.layers().get(layer).wv();
            case WO -> w.layers().get(layer).wo();
            case FFN_NORM -> w.layers().get(layer).ffnNorm();
            case GATE -> w.layers().get(layer).wGate();
            case UP -> w.layers().get(layer).wUp();
            case DOWN -> w.layers().get(layer).wDown();
        };
    }
}
