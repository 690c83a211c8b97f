package io.skipgpt.model;

import java.util.List;

/** Real architectures by name, for benchmarks on random weights with fewer layers. */
public final class ModelShapes {
    public static final List<String> NAMES = List.of("llama2-7b", "llama3-8b", "tiny");

    private ModelShapes() {}

    /** The named architecture with {@code layers} decoder blocks (0 keeps the real count). */
    public static LlamaConfig named(String name, int layers) {
        LlamaConfig c = switch (name) {
            case "llama2-7b" -> new LlamaConfig(4096, 11008, 32, 32, 32, 32000, 4096, 10000f, 1e-5f, false);
            case "llama3-8b" -> new LlamaConfig(4096, 14336, 32, 32, 8, 128256, 8192, 500000f, 1e-5f, false);
            case "tiny" -> new LlamaConfig(256, 688, 4, 8, 4, 512, 1024, 10000f, 1e-5f, true);
            default -> throw new IllegalArgumentException("unknown shape '" + name + "'; known: " + String.join(", ", NAMES));
        };
        if (layers < 0) throw new IllegalArgumentException("layers must be >= 0, got " + layers);
        if (layers == 0) return c;
        return new LlamaConfig(c.dim(), c.hiddenDim(), layers, c.nHeads(), c.nKvHeads(), c.vocabSize(),
                c.contextLength(), c.ropeTheta(), c.normEps(), c.tiedEmbeddings());
    }
}
