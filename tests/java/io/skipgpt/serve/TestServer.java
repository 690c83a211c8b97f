package io.skipgpt.serve;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.routing.RouterGate;
import io.skipgpt.routing.Routers;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.testing.CharTokenizer;
import io.skipgpt.tokenizer.Tokenizer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/**
 * A server on a tiny random model (one token per character) on a free loopback port, for tests that must run
 * without shared data. Each server has its own model (a model runs on one thread); the weights are shared.
 */
final class TestServer implements AutoCloseable {
    static final LlamaConfig CONFIG = new LlamaConfig(32, 64, 2, 4, 2, 100, 65536, 10000f, 1e-5f, false);
    static final Tokenizer TOKENIZER = new CharTokenizer(CONFIG.vocabSize());
    private static LlamaWeights weights;

    final OpenAiServer server;
    final URI url;
    private final Backend backend;
    private final LlamaModel model;
    private final Routers routers;
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();

    /** @param routerSeed seed of random routers (deterministic routing), or null for a dense model */
    TestServer(ServeSettings settings, Long routerSeed) throws IOException {
        this(CONFIG, weights(), TOKENIZER, settings, routerSeed);
    }

    TestServer(LlamaConfig config, LlamaWeights weights, Tokenizer tokenizer, ServeSettings settings, Long routerSeed)
            throws IOException {
        backend = new CpuBackend();
        model = new LlamaModel(config, weights, backend);
        Routing routing = Routing.DENSE;
        routers = routerSeed == null ? null : Routers.initialise(config.nLayers(), config.dim(), routerSeed);
        if (routers != null) {
            routing = Routing.routed(new RouterGate(routers, backend, RouterGate.Mode.DETERMINISTIC, 0),
                    new RoutingStats(config));
        }
        server = new OpenAiServer(new Scheduler(model, tokenizer, routing, settings), tokenizer,
                routers == null ? "dense" : "random routers", new InetSocketAddress("127.0.0.1", 0));
        url = URI.create("http://127.0.0.1:" + server.address().getPort());
    }

    static ServeSettings settings(int maxBatch, int cacheTokens, int maxTokensTotal, int stepTokens, int maxQueue,
                                  String apiKey) {
        return new ServeSettings("tiny", maxBatch, cacheTokens, maxTokensTotal, stepTokens, maxQueue, apiKey);
    }

    static synchronized LlamaWeights weights() {
        if (weights == null) weights = RandomWeights.create(CONFIG, 77);
        return weights;
    }

    HttpResponse<String> post(String path, String body, String... headers) throws IOException, InterruptedException {
        HttpRequest.Builder r = HttpRequest.newBuilder(url.resolve(path)).POST(HttpRequest.BodyPublishers.ofString(body));
        if (headers.length > 0) r.headers(headers);
        return http.send(r.build(), HttpResponse.BodyHandlers.ofString());
    }

    HttpResponse<String> request(String method, String path, String... headers) throws IOException, InterruptedException {
        HttpRequest.Builder r = HttpRequest.newBuilder(url.resolve(path)).method(method, HttpRequest.BodyPublishers.noBody());
        if (headers.length > 0) r.headers(headers);
        return http.send(r.build(), HttpResponse.BodyHandlers.ofString());
    }

    JsonObject health() throws IOException, InterruptedException {
        return JsonParser.parseString(request("GET", "/health").body()).getAsJsonObject();
    }

    /**
     * Waits (up to 10 s, a hang guard) until nothing runs or waits and every cache is back in the pool, and
     * returns the health document then.
     */
    JsonObject awaitIdle() throws IOException, InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (true) {
            JsonObject h = health();
            boolean idle = h.get("running").getAsInt() == 0 && h.get("queued").getAsInt() == 0
                    && h.get("free_caches").getAsInt() == h.get("caches").getAsInt();
            if (idle || System.nanoTime() > deadline) return h;
            Thread.sleep(20);
        }
    }

    @Override
    public void close() {
        server.close();
        model.close();
        if (routers != null) routers.close();
        backend.close();
    }
}
