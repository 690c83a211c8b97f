package io.skipgpt.cli;

import io.skipgpt.io.LoadedModel;
import io.skipgpt.model.LlamaConfig;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Show a model's architecture, parameter count, tokenizer and dtype.",
        footer = {"", "Example:", "  skipgpt info --model ../shared/data/models/stories260K/stories260K.gguf"})
final class InfoCommand implements Callable<Integer> {
    @Mixin
    ModelFileOptions options;

    @Override
    public Integer call() throws Exception {
        try (LoadedModel m = options.load()) {
            LlamaConfig c = m.config();
            System.out.printf("model        %s (%s)%n", m.path(), m.format());
            System.out.printf("architecture llama: dim %d, hidden %d, layers %d, heads %d, kv heads %d, head dim %d%n",
                    c.dim(), c.hiddenDim(), c.nLayers(), c.nHeads(), c.nKvHeads(), c.headDim());
            System.out.printf("context      %d%n", c.contextLength());
            System.out.printf("rope         theta %s, norm eps %s%n", c.ropeTheta(), c.normEps());
            System.out.printf("parameters   %,d%s%n", c.parameterCount(), c.tiedEmbeddings() ? " (tied output head)" : "");
            System.out.printf("vocab        %d%n", c.vocabSize());
            System.out.printf("tokenizer    %s%n", m.tokenizer().describe());
            System.out.printf("dtype        %s on disk, float32 in memory%n", m.storedDtype());
            System.out.printf("modules      %d routable (%d attention, %d MLP)%n", 2 * c.nLayers(), c.nLayers(), c.nLayers());
        }
        return 0;
    }
}
