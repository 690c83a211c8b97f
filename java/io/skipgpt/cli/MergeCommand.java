package io.skipgpt.cli;

import io.skipgpt.io.HfDirectory;
import io.skipgpt.io.LoadedModel;
import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.routing.RouterFile;
import io.skipgpt.routing.Routers;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "merge", mixinStandardHelpOptions = true,
        description = {"Fold a LoRA adapter into the base weights (W += alpha/r * B A for every adapted projection) and",
                "write the result as a Hugging Face directory, which this project and Hugging Face tools load.",
                "With --routers, the router file is copied beside it as DIR/routers.safetensors."},
        footer = {"", "Example:",
                "  skipgpt merge --model ../shared/data/models/stories260K/stories260K.gguf --lora runs/demo/adapter \\",
                "      --routers runs/demo/routers/routers.safetensors --out /tmp/stories260K-pruned",
                "Then: skipgpt eval --model /tmp/stories260K-pruned --routers /tmp/stories260K-pruned/routers.safetensors \\",
                "      --ppl ../shared/data/text/tinystories_valid_head.txt --ctx 512"})
final class MergeCommand implements Callable<Integer> {
    @Mixin
    ModelFileOptions options;

    @Mixin
    LoraOptions loraOptions;

    @Option(names = "--routers", paramLabel = "FILE", description = "Router file to copy beside the merged model.")
    Path routers;

    @Option(names = {"-o", "--out"}, required = true, paramLabel = "DIR", description = "The directory to write.")
    Path out;

    @Override
    public Integer call() throws Exception {
        if (loraOptions.lora == null) throw new IllegalArgumentException("merge needs --lora DIR");
        // Merging is arithmetic on the loaded (host) weights: it runs on the CPU.
        try (LoadedModel m = options.load(); LoraAdapter lora = loraOptions.open(m.config());
                Routers r = routers == null ? null : RouterFile.read(routers, m.config().nLayers(), m.config().dim())) {
            write(m, lora, r, out);
            System.err.printf("merged %s (rank %d, alpha %s, %s) into %s and wrote %s%s%n", loraOptions.lora,
                    lora.config().rank(), lora.config().alpha(), lora.config().targetList(), m.path(), out,
                    r != null ? " with its routers" : "");
        }
        return 0;
    }

    /** Merges the adapter into the loaded weights (in place) and writes them, the routers beside them when not null. */
    static void write(LoadedModel m, LoraAdapter lora, Routers routers, Path out) throws IOException {
        try (Backend cpu = new CpuBackend()) {
            lora.mergeInto(m.weights(), cpu);
        }
        HfDirectory.write(out, m);
        if (routers != null) RouterFile.write(out.resolve("routers.safetensors"), routers);
    }
}
