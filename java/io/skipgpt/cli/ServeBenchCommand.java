package io.skipgpt.cli;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.skipgpt.serve.LoadGenerator;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "serve-bench", mixinStandardHelpOptions = true,
        description = {"Load a running server (skipgpt serve or any OpenAI-compatible one) at several concurrency",
                "levels: each of C clients sends --rounds requests one after another. Reports completion tokens/s,",
                "requests/s, latency and time-to-first-text percentiles, and from skipgpt's /health the mean batch",
                "size, the server's CPU time per generated token and the module sparsity."},
        footer = {"", "Example:",
                "  skipgpt serve --model ../shared/data/models/stories260K/stories260K.gguf --port 8080 &",
                "  skipgpt serve-bench --url http://127.0.0.1:8080 --concurrency 1,4,16,64 --max-tokens 32"})
final class ServeBenchCommand implements Callable<Integer> {
    @Option(names = "--url", defaultValue = "http://127.0.0.1:8080", paramLabel = "URL",
            description = "The server (default: ${DEFAULT-VALUE}).")
    URI url;

    @Option(names = "--api-key", paramLabel = "KEY", description = "Bearer token, when the server wants one.")
    String apiKey;

    @Option(names = "--concurrency", defaultValue = "1,4,16,64", split = ",", paramLabel = "C,...",
            description = "Concurrent clients per level (default: ${DEFAULT-VALUE}).")
    List<Integer> concurrency;

    @Option(names = "--rounds", defaultValue = "4", paramLabel = "N",
            description = "Requests each client sends per level (default: ${DEFAULT-VALUE}).")
    int rounds;

    @Option(names = "--prompt", defaultValue = "Once upon a time", paramLabel = "TEXT",
            description = "Prompt of every request (default: ${DEFAULT-VALUE}).")
    String prompt;

    @Option(names = "--max-tokens", defaultValue = "32", paramLabel = "N",
            description = "max_tokens of every request (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0", paramLabel = "T",
            description = "Temperature; requests are seeded by their number (default: ${DEFAULT-VALUE}).")
    double temperature;

    @Option(names = "--no-stream", description = "Ask for whole answers instead of server-sent events.")
    boolean noStream;

    @Option(names = "--warmup", defaultValue = "32", paramLabel = "N",
            description = "Untimed requests (4 clients) before the first level, so the server's JIT is warm "
                    + "(default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--json", description = "Print one JSON object instead of a table.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        if (rounds < 1 || maxTokens < 1 || warmup < 0 || concurrency.stream().anyMatch(c -> c < 1)) {
            throw new IllegalArgumentException("--rounds, --max-tokens and --concurrency must be >= 1, --warmup >= 0");
        }
        LoadGenerator load = new LoadGenerator(url, apiKey);
        JsonObject model;
        try {
            model = load.get("/v1/models").getAsJsonArray("data").get(0).getAsJsonObject();
        } catch (ConnectException e) {
            throw new IOException("cannot reach " + url + ": connection refused (is the server running?)", e);
        }
        String name = model.get("id").getAsString();
        String routing = model.has("routing") ? model.get("routing").getAsString() : "?";
        System.err.printf("warming up %s with %d requests...%n", name, warmup);
        check(load.run("/v1/completions", bodies(name, warmup), 4));
        List<Row> rows = new ArrayList<>();
        JsonObject health = null;
        for (int c : concurrency) {
            JsonObject before = load.get("/health");
            long t0 = System.nanoTime();
            List<LoadGenerator.Outcome> outcomes = load.run("/v1/completions", bodies(name, c * rounds), c);
            double seconds = (System.nanoTime() - t0) / 1e9;
            JsonObject after = load.get("/health");
            health = after;
            LoadGenerator.Summary s = LoadGenerator.summarise(c, outcomes, seconds);
            rows.add(new Row(s, meanBatch(before, after), cpuMillisPerToken(before, after),
                    after.has("module_sparsity") ? after.get("module_sparsity").getAsDouble() : 0));
            System.err.printf("%d clients: %.1f tok/s%n", c, s.tokensPerSecond());
            outcomes.stream().filter(o -> o.error() != null).limit(3)
                    .forEach(o -> System.err.println("  failed: " + o.error()));
        }
        print(name, routing, health.has("flop_bound") ? health.get("flop_bound").getAsDouble() : 1.0, rows);
        return rows.stream().anyMatch(r -> r.summary().failed() > 0) ? 1 : 0;
    }

    private record Row(LoadGenerator.Summary summary, double meanBatch, double cpuMillisPerToken, double sparsity) {}

    private List<JsonObject> bodies(String model, int n) {
        List<JsonObject> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            JsonObject b = new JsonObject();
            b.addProperty("model", model);
            b.addProperty("prompt", prompt);
            b.addProperty("max_tokens", maxTokens);
            b.addProperty("temperature", temperature);
            b.addProperty("seed", i);
            if (!noStream) {
                b.addProperty("stream", true);
                JsonObject options = new JsonObject();
                options.addProperty("include_usage", true);
                b.add("stream_options", options);
            }
            out.add(b);
        }
        return out;
    }

    private static void check(List<LoadGenerator.Outcome> outcomes) {
        for (LoadGenerator.Outcome o : outcomes) {
            if (o.error() != null) throw new IllegalStateException("a warm-up request failed: " + o.error());
        }
    }

    // Generated tokens per forward pass over the level: how many sequences a pass carried on average.
    private static double meanBatch(JsonObject before, JsonObject after) {
        long passes = after.get("passes").getAsLong() - before.get("passes").getAsLong();
        long tokens = after.get("generated_tokens").getAsLong() - before.get("generated_tokens").getAsLong();
        return passes == 0 ? 0 : (double) tokens / passes;
    }

    // Server process CPU time per generated token over the level (NaN without the figures in /health).
    private static double cpuMillisPerToken(JsonObject before, JsonObject after) {
        if (!before.has("process_cpu_seconds") || !after.has("process_cpu_seconds")) return Double.NaN;
        double cpu = after.get("process_cpu_seconds").getAsDouble() - before.get("process_cpu_seconds").getAsDouble();
        long tokens = after.get("generated_tokens").getAsLong() - before.get("generated_tokens").getAsLong();
        return tokens == 0 ? Double.NaN : cpu * 1e3 / tokens;
    }

    // flopBound: dense FLOPs / executed FLOPs of the routing over everything the server ran (1 when dense)
    private void print(String name, String routing, double flopBound, List<Row> rows) {
        if (json) {
            JsonObject o = new JsonObject();
            o.addProperty("model", name);
            o.addProperty("routing", routing);
            o.addProperty("flop_bound", flopBound);
            o.addProperty("max_tokens", maxTokens);
            o.addProperty("stream", !noStream);
            JsonArray levels = new JsonArray();
            for (Row r : rows) {
                LoadGenerator.Summary s = r.summary();
                JsonObject l = new JsonObject();
                l.addProperty("clients", s.clients());
                l.addProperty("requests", s.requests());
                l.addProperty("failed", s.failed());
                l.addProperty("seconds", s.seconds());
                l.addProperty("completion_tokens", s.completionTokens());
                l.addProperty("tokens_per_s", s.tokensPerSecond());
                l.addProperty("requests_per_s", s.requestsPerSecond());
                l.addProperty("latency_p50_ms", s.latencyP50());
                l.addProperty("latency_p90_ms", s.latencyP90());
                l.addProperty("latency_p99_ms", s.latencyP99());
                l.addProperty("first_text_p50_ms", s.firstTextP50());
                l.addProperty("first_text_p99_ms", s.firstTextP99());
                l.addProperty("mean_batch", r.meanBatch());
                l.addProperty("server_cpu_ms_per_token", r.cpuMillisPerToken());
                l.addProperty("module_sparsity", r.sparsity());
                levels.add(l);
            }
            o.add("levels", levels);
            System.out.println(new GsonBuilder().serializeSpecialFloatingPointValues().create().toJson(o));
            return;
        }
        System.out.printf("model %s, routing %s (FLOP bound %.2f), max_tokens %d, %s%n", name, routing, flopBound,
                maxTokens, noStream ? "whole answers" : "streaming");
        System.out.println("| clients | requests | failed | tok/s | req/s | latency p50 / p90 / p99 (ms) "
                + "| first text p50 / p99 (ms) | mean batch | server CPU ms/token | module sparsity |");
        System.out.println("|---:|---:|---:|---:|---:|---|---|---:|---:|---:|");
        for (Row r : rows) {
            LoadGenerator.Summary s = r.summary();
            System.out.printf("| %d | %d | %d | %.1f | %.2f | %.0f / %.0f / %.0f | %.0f / %.0f | %.1f | %.2f | %.3f |%n",
                    s.clients(), s.requests(), s.failed(), s.tokensPerSecond(), s.requestsPerSecond(), s.latencyP50(),
                    s.latencyP90(), s.latencyP99(), s.firstTextP50(), s.firstTextP99(), r.meanBatch(),
                    r.cpuMillisPerToken(), r.sparsity());
        }
    }
}
