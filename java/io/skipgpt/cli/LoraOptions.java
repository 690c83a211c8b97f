package io.skipgpt.cli;

import io.skipgpt.io.ModelFormatException;
import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.lora.PeftDirectory;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Device;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** A LoRA adapter for the commands that run a model. */
final class LoraOptions {
    @Option(names = "--lora", paramLabel = "DIR",
            description = "A LoRA adapter (PEFT directory, from train-lora or prune), applied unmerged.")
    Path lora;

    /** The adapter for a model of this shape, or null when --lora is not given (the caller closes it). */
    LoraAdapter open(LlamaConfig config) throws ModelFormatException {
        return lora == null ? null : PeftDirectory.read(lora, config);
    }

    /**
     * The adapter on the backend's device, where a model on that backend reads it (the host copy itself on a host
     * backend), or null when --lora is not given; the caller closes it.
     */
    LoraAdapter open(LlamaConfig config, Backend backend) throws ModelFormatException {
        LoraAdapter host = open(config);
        if (host == null || backend.device() == Device.CPU) return host;
        try (host) {
            return host.uploadTo(backend);
        }
    }
}
