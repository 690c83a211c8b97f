package io.skipgpt.cli;

import io.skipgpt.io.LoadedModel;
import io.skipgpt.io.ModelLoader;
import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.model.Adapter;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.serve.OpenAiServer;
import io.skipgpt.serve.Scheduler;
import io.skipgpt.serve.ServeSettings;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tokenizer.Tokenizer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"An OpenAI-compatible HTTP server: /v1/completions, /v1/chat/completions (streaming with",
                "\"stream\": true), /v1/models and /health. Requests are batched continuously: they join and leave the",
                "running batch between forward passes, and the rows that routers keep are gathered across requests.",
                "Runs until stopped (Ctrl-C)."},
        footer = {"", "Example:",
                "  skipgpt serve --model ../shared/data/models/stories260K/stories260K.gguf --port 8080",
                "  curl -s http://127.0.0.1:8080/v1/completions -H 'Content-Type: application/json' \\",
                "      -d '{\"prompt\": \"Once upon a time\", \"max_tokens\": 40, \"temperature\": 0}'",
                "A pruned model: --routers runs/demo/routers/routers.safetensors --lora runs/demo/adapter",
                "(or serve the merged model that prune writes, with its routers)."})
final class ServeCommand implements Callable<Integer> {
    @Mixin
    ModelOrShapeOptions source;

    @Option(names = "--tokenizer", paramLabel = "FILE",
            description = "Tokenizer: overrides the model's own; required with --shape, whose vocabulary it sets.")
    Path tokenizer;

    @Mixin
    DeviceOptions device;

    @Mixin
    RoutingOptions routingOptions;

    @Mixin
    LoraOptions loraOptions;

    @Option(names = "--host", defaultValue = "127.0.0.1", paramLabel = "HOST",
            description = "Address to listen on (default: ${DEFAULT-VALUE}, this machine only).")
    String host;

    @Option(names = "--port", defaultValue = "8080", paramLabel = "PORT",
            description = "Port to listen on; 0 picks a free one (default: ${DEFAULT-VALUE}).")
    int port;

    @Option(names = "--api-key", paramLabel = "KEY", defaultValue = "${env:SKIPGPT_API_KEY}",
            description = "Require 'Authorization: Bearer KEY' on every /v1 request (default: the environment "
                    + "variable SKIPGPT_API_KEY, which keeps the key out of the process list; none when unset).")
    String apiKey;

    @Option(names = "--model-name", paramLabel = "NAME",
            description = "The model id clients use (default: the model's file name without extension).")
    String modelName;

    @Option(names = "--max-batch", defaultValue = "16", paramLabel = "N",
            description = "Most requests running at once; also the number of pooled KV caches (default: ${DEFAULT-VALUE}).")
    int maxBatch;

    @Option(names = "--ctx", paramLabel = "N",
            description = "Tokens per request (prompt + completion), the size of each pooled KV cache "
                    + "(default: the model's context length).")
    Integer ctx;

    @Option(names = "--max-tokens-total", paramLabel = "N",
            description = "Admission bound: the running requests' prompt + max_tokens never sum past N; more wait "
                    + "in the queue (default: max-batch x ctx, no extra bound).")
    Integer maxTokensTotal;

    @Option(names = "--step-tokens", defaultValue = "512", paramLabel = "N",
            description = "Rows per forward pass before prompts are cut into pieces (default: ${DEFAULT-VALUE}).")
    int stepTokens;

    @Option(names = "--max-queue", defaultValue = "256", paramLabel = "N",
            description = "Requests that may wait for a place in the batch; more are refused with 429 (default: ${DEFAULT-VALUE}).")
    int maxQueue;

    @Override
    public Integer call() throws Exception {
        LlamaConfig config;
        LlamaWeights weights;
        Tokenizer tok;
        String name;
        if (source.model() != null) {
            LoadedModel m = ModelLoader.load(source.model(), tokenizer);
            config = m.config();
            weights = m.weights();
            tok = m.tokenizer();
            String file = source.model().getFileName().toString();
            name = file.contains(".") ? file.substring(0, file.lastIndexOf('.')) : file;
        } else {
            if (tokenizer == null) throw new IllegalArgumentException("--shape needs --tokenizer");
            tok = ModelLoader.loadTokenizer(tokenizer);
            config = source.shapeConfig().withVocabSize(tok.vocabSize());
            weights = source.randomWeights(config);
            name = source.shape() + "-x" + config.nLayers() + "-random";
        }
        int perRequest = ctx != null ? ctx : config.contextLength();
        if (perRequest > config.contextLength()) {
            throw new IllegalArgumentException("--ctx " + perRequest + " exceeds the model's context length "
                    + config.contextLength());
        }
        ServeSettings settings = new ServeSettings(modelName != null ? modelName : name, maxBatch, perRequest,
                maxTokensTotal != null ? maxTokensTotal : Math.multiplyExact(maxBatch, perRequest), stepTokens,
                maxQueue, apiKey);
        try (weights; Backend backend = device.open(); LoraAdapter lora = loraOptions.open(config);
                LlamaModel model = new LlamaModel(config, weights, backend, lora == null ? Adapter.NONE : lora);
                Routing routing = routingOptions.open(config, backend, new RoutingStats(config))) {
            System.err.printf("KV cache pool: %d caches x %d tokens (%.1f MiB)%n", maxBatch, perRequest,
                    2.0 * 4 * config.nLayers() * config.kvDim() * perRequest * maxBatch / (1 << 20));
            OpenAiServer server = start(new Scheduler(model, tok, routing, settings), tok);
            CountDownLatch stopped = new CountDownLatch(1);
            Thread hook = new Thread(() -> {
                server.close();
                stopped.countDown();
            }, "skipgpt-serve-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            InetSocketAddress at = server.address();
            System.err.printf("serving %s (%s) at http://%s:%d/v1 — chat template: %s%n", settings.modelName(),
                    describeRouting(), at.getHostString(), at.getPort(), server.chatTemplate());
            if (!InetAddress.getByName(host).isLoopbackAddress() && apiKey == null) {
                System.err.println("warning: listening beyond this machine without --api-key");
            }
            try {
                stopped.await();
            } catch (InterruptedException e) {
                // stopped from inside the JVM (tests): shut down as Ctrl-C would
                Runtime.getRuntime().removeShutdownHook(hook);
                server.close();
            }
        }
        return 0;
    }

    private OpenAiServer start(Scheduler scheduler, Tokenizer tok) throws IOException {
        try {
            return new OpenAiServer(scheduler, tok, describeRouting(), new InetSocketAddress(host, port));
        } catch (IOException e) {
            scheduler.close();
            throw new IOException("cannot listen on " + host + ":" + port + ": " + e.getMessage(), e);
        }
    }

    private String describeRouting() {
        if (routingOptions.routers != null) return "routers " + routingOptions.routers + " (" + routingOptions.mode + ")";
        if (routingOptions.skip != null) return "static skip " + routingOptions.skip;
        return "dense";
    }
}
