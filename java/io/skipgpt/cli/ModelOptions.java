package io.skipgpt.cli;

import io.skipgpt.io.LoadedModel;
import io.skipgpt.io.ModelFormatException;
import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.model.Adapter;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.tensor.Backend;
import picocli.CommandLine.Mixin;

/** The options every command that runs a model shares: which model, which tokenizer, which device. */
final class ModelOptions {
    @Mixin
    ModelFileOptions file;

    @Mixin
    DeviceOptions device;

    LoadedModel load() throws ModelFormatException {
        return file.load();
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
