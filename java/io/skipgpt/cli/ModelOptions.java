package io.skipgpt.cli;

import io.skipgpt.io.LoadedModel;
import io.skipgpt.io.ModelFormatException;
import io.skipgpt.io.ModelLoader;
import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.model.Adapter;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Backends;
import io.skipgpt.tensor.GpuProbe;
import java.nio.file.Path;
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
     * The backend a model runs on. The CUDA backend and kernels exist and pass their tests on a GPU, but the model
     * code still keeps its activations in host memory, so until it moves to device tensors "auto" stays on the CPU
     * (saying so when it sees a GPU) and "cuda" is refused with the reason.
     */
    static Backend openForModel(String device) {
        if ("cpu".equals(device)) return Backends.open("cpu", System.err);
        if (!"auto".equals(device) && !"cuda".equals(device)) return Backends.open(device, System.err);
        GpuProbe.Result gpu = GpuProbe.probe();
        if ("cuda".equals(device)) {
            throw new IllegalStateException("--device cuda: " + (gpu.available()
                    ? "found GPU " + gpu.message() + ", but models do not run on the CUDA backend in this version yet"
                    : "no usable GPU: " + gpu.message()) + "; use --device cpu");
        }
        System.err.println(gpu.available()
                ? "device auto: found GPU " + gpu.message() + ", but models run on the CPU in this version; using CPU"
                : "device auto: no usable GPU (" + gpu.message() + "); using CPU");
        return Backends.open("cpu", System.err);
    }

    static LlamaModel model(LoadedModel loaded, Backend backend) {
        return model(loaded, backend, null);
    }

    /** The model with a LoRA adapter applied unmerged; {@code lora} may be null. */
    static LlamaModel model(LoadedModel loaded, Backend backend, LoraAdapter lora) {
        return new LlamaModel(loaded.config(), loaded.weights(), backend, lora == null ? Adapter.NONE : lora);
    }
}
