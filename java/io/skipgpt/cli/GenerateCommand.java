package io.skipgpt.cli;

import io.skipgpt.infer.Generator;
import io.skipgpt.infer.Sampler;
import io.skipgpt.io.LoadedModel;
import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.tensor.Backend;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Continue a prompt. The continuation streams to stdout; speed figures go to stderr.",
                "An empty prompt starts from BOS. Temperature 0 is greedy decoding."},
        footer = {"", "Example:",
                "  skipgpt generate --model ../shared/data/models/stories260K/stories260K.gguf \\",
                "      --prompt \"Once upon a time\" --max-tokens 100 --temperature 0.8 --top-p 0.9 --seed 42",
                "  skipgpt generate --model M --routers runs/demo/routers/routers.safetensors --lora runs/demo/adapter \\",
                "      --prompt \"Once upon a time\"                                              # routed + LoRA"})
final class GenerateCommand implements Callable<Integer> {
    @Mixin
    ModelOptions options;

    @Option(names = {"-p", "--prompt"}, defaultValue = "", paramLabel = "TEXT", description = "The prompt (default: empty).")
    String prompt;

    @Option(names = {"-n", "--max-tokens"}, defaultValue = "256", paramLabel = "N",
            description = "Most tokens to generate (default: ${DEFAULT-VALUE}); stops earlier at EOS or the context end.")
    int maxTokens;

    @Option(names = {"-t", "--temperature"}, defaultValue = "0", paramLabel = "T",
            description = "Sampling temperature; 0 = greedy (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--top-p", defaultValue = "1", paramLabel = "P",
            description = "Nucleus sampling: keep the most probable tokens up to mass P (default: ${DEFAULT-VALUE}).")
    float topP;

    @Option(names = "--seed", paramLabel = "S", description = "Random seed for sampling (default: time-based).")
    Long seed;

    @Mixin
    RoutingOptions routingOptions;

    @Mixin
    LoraOptions loraOptions;

    @Option(names = "--echo", description = "Print the prompt before the continuation.")
    boolean echo;

    @Override
    public Integer call() throws Exception {
        Sampler sampler = new Sampler(temperature, topP, seed != null ? seed : System.nanoTime());
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        try (LoadedModel m = options.load(); Backend backend = options.backend();
                LoraAdapter lora = loraOptions.open(m.config());
                LlamaModel model = ModelOptions.model(m, backend, lora);
                Routing routing = routingOptions.open(m.config(), backend, new RoutingStats(m.config()))) {
            if (echo) out.print(prompt);
            RoutingStats stats = routing.stats(); // null without --routers / --skip, when it is not printed
            Generator.Result r = new Generator(model, m.tokenizer(), routing).generate(prompt, maxTokens, sampler, piece -> {
                out.print(piece);
                out.flush();
            });
            out.println();
            System.err.printf("[%s] prompt %d tokens: %.1f tok/s; generated %d tokens: %.1f tok/s%n",
                    backend.name(), r.promptTokens(), r.prefillTokensPerSecond(), r.tokens().length,
                    r.decodeTokensPerSecond());
            if (routingOptions.active()) {
                System.err.printf("[routing] module sparsity %.3f, FLOP saving %.3f over %d positions%n",
                        stats.moduleSparsity(), stats.flopSaving(), stats.tokens());
            }
        }
        return 0;
    }
}
