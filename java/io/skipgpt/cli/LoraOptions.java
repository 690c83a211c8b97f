package io.skipgpt.cli;

import io.skipgpt.io.ModelFormatException;
import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.lora.PeftDirectory;
import io.skipgpt.model.LlamaConfig;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** A LoRA adapter for the commands that run a model. */
final class LoraOptions {
    @Option(names = "--lora", paramLabel = "DIR",
            description = "A LoRA adapter (PEFT directory, from train-lora or prune), applied unmerged.")
    Path lora;

    /**
     * The adapter for a model of this shape, on the host (a model on a device backend copies it there), or null when
     * --lora is not given; the caller closes it.
     */
    LoraAdapter open(LlamaConfig config) throws ModelFormatException {
        return lora == null ? null : PeftDirectory.read(lora, config);
    }
}
