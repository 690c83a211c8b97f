package io.skipgpt.tensor;

/** Which dimensions of a head RoPE rotates together. The model runs in {@link #ADJACENT} internally. */
public enum RopeStyle {
    /** Pairs (2i, 2i+1): GGUF and llama2.c checkpoints, and this project's internal convention. */
    ADJACENT,
    /** Pairs (i, i + headDim/2): Hugging Face checkpoints. */
    ROTATE_HALF
}
