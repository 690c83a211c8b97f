package io.skipgpt.model;

/**
 * The shape of a LLaMA-family decoder. {@code contextLength} is the context the model was trained at;
 * {@code tiedEmbeddings} means the output head shares the token embedding.
 */
public record LlamaConfig(
        int dim,
        int hiddenDim,
        int nLayers,
        int nHeads,
        int nKvHeads,
        int vocabSize,
        int contextLength,
        float ropeTheta,
        float normEps,
        boolean tiedEmbeddings) {

    public LlamaConfig {
        require(dim > 0 && hiddenDim > 0 && nLayers > 0 && nHeads > 0 && nKvHeads > 0 && vocabSize > 0
                && contextLength > 0, "all sizes must be positive");
        require(dim % nHeads == 0, "dim " + dim + " is not a multiple of n_heads " + nHeads);
        require(nHeads % nKvHeads == 0, "n_heads " + nHeads + " is not a multiple of n_kv_heads " + nKvHeads);
        require((dim / nHeads) % 2 == 0, "head dim " + dim / nHeads + " is odd; RoPE needs pairs");
    }

    public int headDim() {
        return dim / nHeads;
    }

    public int kvDim() {
        return nKvHeads * headDim();
    }

    /** Parameters as usually counted: every weight once, a tied head not counted twice. */
    public long parameterCount() {
        long attn = (long) dim * dim * 2 + (long) dim * kvDim() * 2;
        long mlp = 3L * dim * hiddenDim;
        long perLayer = attn + mlp + 2L * dim;
        long embed = (long) vocabSize * dim;
        return perLayer * nLayers + embed + dim + (tiedEmbeddings ? 0 : embed);
    }

    public LlamaConfig withContextLength(int ctx) {
        return new LlamaConfig(dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, ctx, ropeTheta, normEps,
                tiedEmbeddings);
    }

    /** The same architecture with another vocabulary (a --shape model given a tokenizer's). */
    public LlamaConfig withVocabSize(int vocab) {
        return new LlamaConfig(dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, contextLength, ropeTheta, normEps,
                tiedEmbeddings);
    }

    private static void require(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException("invalid model config: " + message);
    }
}
