package io.skipgpt.cli;

import io.skipgpt.io.LoadedModel;
import io.skipgpt.io.ModelFormatException;
import io.skipgpt.io.ModelLoader;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Which model and tokenizer: what every command that reads a model takes (info, convert and merge only this). */
final class ModelFileOptions {
    @Option(names = {"-m", "--model"}, required = true, paramLabel = "PATH",
            description = "A GGUF file, a llama2.c checkpoint (.bin) or a Hugging Face directory.")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "FILE",
            description = "Tokenizer for a llama2.c checkpoint (default: tokenizer.bin or tok*.bin beside it).")
    Path tokenizer;

    LoadedModel load() throws ModelFormatException {
        return ModelLoader.load(model, tokenizer);
    }
}
