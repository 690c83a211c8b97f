package io.skipgpt.cli;

import io.skipgpt.io.HfDirectory;
import io.skipgpt.io.LoadedModel;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "convert", mixinStandardHelpOptions = true,
        description = {"Write any loadable model as a Hugging Face directory: config.json, model.safetensors (F32),",
                "tokenizer.json reproducing the model's own tokenization, tokenizer_config.json.",
                "Q/K rows are written in Hugging Face's rotate-half order, so transformers loads the result."},
        footer = {"", "Example:",
                "  skipgpt convert --model ../shared/data/models/stories260K/stories260K.gguf --out /tmp/stories260K-hf"})
final class ConvertCommand implements Callable<Integer> {
    @Mixin
    ModelFileOptions options;

    @Option(names = {"-o", "--out"}, required = true, paramLabel = "DIR", description = "The directory to write.")
    Path out;

    @Override
    public Integer call() throws Exception {
        try (LoadedModel m = options.load()) {
            HfDirectory.write(out, m);
            System.err.printf("wrote %s (%s, %,d parameters) as a Hugging Face directory: %s%n", m.path(), m.format(),
                    m.config().parameterCount(), out);
        }
        return 0;
    }
}
