package io.skipgpt.cli;

import io.skipgpt.io.LoadedModel;
import io.skipgpt.io.ModelFormatException;
import io.skipgpt.io.ModelLoader;
import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.model.Adapter;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Backends;
import java.nio.file.Path;
import java.util.function.Supplier;
import picocli.CommandLine.Option;

/** The options every command that runs a model shares: which model, which tokenizer, which device. */
final class ModelOptions {
    @Option(names = {"-m", "--model"}, required = true, paramLabel = "PATH",
            description = "A GGUF file, a llama2.c checkpoint (.bin) or a Hugging Face directory.")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "FILE",
            description = "Tokenizer for a llama2.c checkpoint (default: tokenizer.bin or tok*.bin beside it).")
    Path tokenizer;

    @Option(names = "--device", paramLabel = "DEVICE", defaultValue = "auto",
            description = "auto (GPU when usable, else CPU), cpu or cuda. Default: ${DEFAULT-VALUE}.")
    String device;

    LoadedModel load() throws ModelFormatException {
        return ModelLoader.load(model, tokenizer);
    }

    Backend backend() {
        return openForModel(device);
    }

    /**
     * Where tests run commands on a device backend without a GPU (the emulated device); null otherwise. Set only
     * by tests, around the commands they run.
     */
    static volatile Supplier<Backend> deviceForTests;

    /** The backend a model runs on: {@link Backends#open} (auto: the GPU when usable, else the CPU, in one line). */
    static Backend openForModel(String device) {
        Supplier<Backend> test = deviceForTests;
        if (test != null && !"cpu".equals(device)) return test.get();
        return Backends.open(device, System.err);
    }

    static LlamaModel model(LoadedModel loaded, Backend backend) {
        return model(loaded, backend, null);
    }

    /** The model with a LoRA adapter applied unmerged; {@code lora} may be null. */
    static LlamaModel model(LoadedModel loaded, Backend backend, LoraAdapter lora) {
        return new LlamaModel(loaded.config(), loaded.weights(), backend, lora == null ? Adapter.NONE : lora);
    }
}
