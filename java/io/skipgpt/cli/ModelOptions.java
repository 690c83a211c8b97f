package io.skipgpt.cli;

import io.skipgpt.io.LoadedModel;
import io.skipgpt.io.ModelFormatException;
import io.skipgpt.io.ModelLoader;
import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.model.Adapter;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.tensor.Backend;
import java.nio.file.Path;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** The options every command that runs a model shares: which model, which tokenizer, which device. */
final class ModelOptions {
    @Option(names = {"-m", "--model"}, required = true, paramLabel = "PATH",
            description = "A GGUF file, a llama2.c checkpoint (.bin) or a Hugging Face directory.")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "FILE",
            description = "Tokenizer for a llama2.c checkpoint (default: tokenizer.bin or tok*.bin beside it).")
    Path tokenizer;

    @Mixin
    DeviceOptions device;

    LoadedModel load() throws ModelFormatException {
        return ModelLoader.load(model, tokenizer);
    }

    Backend backend() {
        return device.open();
    }

    static LlamaModel model(LoadedModel loaded, Backend backend) {
        return model(loaded, backend, null);
    }

    /** The model with a LoRA adapter applied unmerged; {@code lora} may be null. */
    static LlamaModel model(LoadedModel loaded, Backend backend, LoraAdapter lora) {
        return new LlamaModel(loaded.config(), loaded.weights(), backend, lora == null ? Adapter.NONE : lora);
    }
}
