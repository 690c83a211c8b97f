package io.skipgpt.serve;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A small load generator for an OpenAI-compatible server: a number of clients, each sending its next request
 * as soon as its last one is answered, until every request is done. Streaming requests are read event by event
 * (time to first token, text, usage); others as one JSON answer. Used by {@code serve-bench} and by tests.
 */
public final class LoadGenerator {
    /** One request's result; {@code error} is null when it succeeded. */
    public record Outcome(int status, String text, String finishReason, int completionTokens, long startNanos,
                          long firstTextNanos, long endNanos, String error) {
        public double latencyMillis() {
            return (endNanos - startNanos) / 1e6;
        }

        /** Time to the first text piece (streaming), or to the answer. */
        public double firstTextMillis() {
            return ((firstTextNanos > 0 ? firstTextNanos : endNanos) - startNanos) / 1e6;
        }
    }

    /** Figures of a run: completion tokens per second of wall time, latency percentiles in milliseconds. */
    public record Summary(int clients, int requests, int failed, double seconds, long completionTokens,
                          double tokensPerSecond, double requestsPerSecond, double latencyP50, double latencyP90,
                          double latencyP99, double firstTextP50, double firstTextP99) {}

    private final URI base;
    private final String apiKey;
    private final HttpClient client;

    /** @param base the server, e.g. http://127.0.0.1:8080 ; @param apiKey a bearer token or null */
    public LoadGenerator(URI base, String apiKey) {
        this.base = base;
        this.apiKey = apiKey;
        this.client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10)).build();
    }

    /**
     * Sends every body to {@code path} (e.g. /v1/completions) from {@code clients} concurrent clients and returns
     * the outcomes in the order of the bodies. A body with {@code "stream": true} is read as server-sent events.
     */
    public List<Outcome> run(String path, List<JsonObject> bodies, int clients) throws InterruptedException {
        if (clients < 1) throw new IllegalArgumentException("clients must be >= 1");
        Outcome[] outcomes = new Outcome[bodies.size()];
        AtomicInteger next = new AtomicInteger();
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            Thread t = new Thread(() -> {
                for (int i = next.getAndIncrement(); i < bodies.size(); i = next.getAndIncrement()) {
                    outcomes[i] = send(path, bodies.get(i));
                }
            }, "load-client-" + c);
            t.setDaemon(true);
            threads.add(t);
            t.start();
        }
        try {
            for (Thread t : threads) t.join();
        } catch (InterruptedException e) {
            threads.forEach(Thread::interrupt);
            throw e;
        }
        return Arrays.asList(outcomes);
    }

    /** GETs a JSON document (e.g. /health); an {@link IOException} for any status but 200. */
    public JsonObject get(String path) throws IOException, InterruptedException {
        HttpRequest.Builder request = HttpRequest.newBuilder(base.resolve(path)).GET();
        if (apiKey != null) request.header("Authorization", "Bearer " + apiKey);
        HttpResponse<String> response = client.send(request.build(), HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw new IOException("GET " + path + ": HTTP " + response.statusCode() + " " + response.body());
        }
        return JsonParser.parseString(response.body()).getAsJsonObject();
    }

    /** One request, synchronously. */
    public Outcome send(String path, JsonObject body) {
        boolean stream = body.has("stream") && body.get("stream").getAsBoolean();
        HttpRequest.Builder request = HttpRequest.newBuilder(base.resolve(path))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString()));
        if (apiKey != null) request.header("Authorization", "Bearer " + apiKey);
        long start = System.nanoTime();
        try {
            HttpResponse<InputStream> response = client.send(request.build(), HttpResponse.BodyHandlers.ofInputStream());
            try (InputStream in = response.body()) {
                if (response.statusCode() != 200) {
                    String text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
                    return failed(response.statusCode(), start, text);
                }
                return stream ? readEvents(in, start) : readAnswer(in, start);
            }
        } catch (IOException | RuntimeException e) {
            return failed(-1, start, e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return failed(-1, start, "interrupted");
        }
    }

    private static Outcome readAnswer(InputStream in, long start) throws IOException {
        JsonObject o = JsonParser.parseString(new String(in.readAllBytes(), StandardCharsets.UTF_8)).getAsJsonObject();
        long end = System.nanoTime();
        JsonObject choice = o.getAsJsonArray("choices").get(0).getAsJsonObject();
        String text = choice.has("message") ? choice.getAsJsonObject("message").get("content").getAsString()
                : choice.get("text").getAsString();
        int tokens = o.getAsJsonObject("usage").get("completion_tokens").getAsInt();
        return new Outcome(200, text, choice.get("finish_reason").getAsString(), tokens, start, 0, end, null);
    }

    // Server-sent events: "data: {json}" lines separated by blank lines, ":" comments, "data: [DONE]" last.
    private static Outcome readEvents(InputStream in, long start) throws IOException {
        BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
        StringBuilder text = new StringBuilder();
        String finish = null;
        int tokens = -1;
        long first = 0;
        for (String line = reader.readLine(); line != null; line = reader.readLine()) {
            if (line.isEmpty() || line.startsWith(":")) continue;
            if (!line.startsWith("data: ")) return failed(200, start, "not an SSE data line: " + line);
            String data = line.substring(6);
            if (data.equals("[DONE]")) {
                if (finish == null) return failed(200, start, "[DONE] before a finish_reason");
                return new Outcome(200, text.toString(), finish, tokens, start, first, System.nanoTime(), null);
            }
            JsonObject o = JsonParser.parseString(data).getAsJsonObject();
            if (o.has("error")) return failed(200, start, data);
            if (o.has("usage")) tokens = o.getAsJsonObject("usage").get("completion_tokens").getAsInt();
            for (JsonElement c : o.getAsJsonArray("choices")) {
                JsonObject choice = c.getAsJsonObject();
                JsonElement piece = choice.has("delta") ? choice.getAsJsonObject("delta").get("content")
                        : choice.get("text");
                if (piece != null && !piece.isJsonNull() && !piece.getAsString().isEmpty()) {
                    if (first == 0) first = System.nanoTime();
                    text.append(piece.getAsString());
                }
                if (!choice.get("finish_reason").isJsonNull()) finish = choice.get("finish_reason").getAsString();
            }
        }
        return failed(200, start, "the stream ended without [DONE]");
    }

    private static Outcome failed(int status, long start, String error) {
        return new Outcome(status, null, null, 0, start, 0, System.nanoTime(), error);
    }

    /** Figures over outcomes of one run that took {@code seconds} of wall time. */
    public static Summary summarise(int clients, List<Outcome> outcomes, double seconds) {
        List<Outcome> ok = outcomes.stream().filter(o -> o.error() == null).toList();
        long tokens = ok.stream().mapToLong(o -> Math.max(0, o.completionTokens())).sum();
        double[] latency = ok.stream().mapToDouble(Outcome::latencyMillis).sorted().toArray();
        double[] first = ok.stream().mapToDouble(Outcome::firstTextMillis).sorted().toArray();
        return new Summary(clients, outcomes.size(), outcomes.size() - ok.size(), seconds, tokens, tokens / seconds,
                ok.size() / seconds, percentile(latency, 50), percentile(latency, 90), percentile(latency, 99),
                percentile(first, 50), percentile(first, 99));
    }

    /** The nearest-rank percentile of sorted values (NaN when there are none). */
    static double percentile(double[] sorted, double p) {
        if (sorted.length == 0) return Double.NaN;
        int rank = (int) Math.ceil(p / 100 * sorted.length);
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
    }
}
