package io.skipgpt.io;

import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.tokenizer.Tokenizer;
import java.nio.file.Path;

/**
 * A model as loaded from disk: where it came from, the format ("GGUF", "llama2.c", "Hugging Face"), the dtype
 * its tensors were stored in (e.g. "F32", "F16", "BF16", "Q8_0", or "F32+Q8_0" when mixed; weights are
 * float32 in memory), its shape, weights and tokenizer.
 */
public record LoadedModel(Path path, String format, String storedDtype, LlamaConfig config, LlamaWeights weights,
                          Tokenizer tokenizer) implements AutoCloseable {
    @Override
    public void close() {
        weights.close();
    }
}
