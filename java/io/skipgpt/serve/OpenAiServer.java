package io.skipgpt.serve;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.skipgpt.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.OutputStream;
import java.io.StringReader;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An OpenAI-compatible HTTP server over a {@link Scheduler}: {@code POST /v1/completions} and
 * {@code POST /v1/chat/completions} (whole JSON answers, or server-sent events with {@code "stream": true}),
 * {@code GET /v1/models}, {@code GET /v1/models/{id}} and {@code GET /health}. Bad requests get OpenAI's error
 * shape with a 4xx status; with an API key, every {@code /v1} request must carry it as a bearer token.
 *
 * <p>Closing the server closes its scheduler: waiting requests end with an error.
 */
public final class OpenAiServer implements AutoCloseable {
    static final int MAX_BODY_BYTES = 1 << 20;
    /** A streaming connection that waits this long for a token gets an SSE comment (which finds gone clients). */
    static final long KEEP_ALIVE_MILLIS = 1000;
    private static final int MAX_STOP_STRINGS = 4;
    private static final int DEFAULT_COMPLETION_TOKENS = 16; // OpenAI's default for /v1/completions
    private static final Set<String> COMPLETION_FIELDS = Set.of("model", "prompt", "max_tokens", "temperature",
            "top_p", "stop", "seed", "stream", "stream_options", "n", "user");
    private static final Set<String> CHAT_FIELDS = Set.of("model", "messages", "max_tokens", "max_completion_tokens",
            "temperature", "top_p", "stop", "seed", "stream", "stream_options", "n", "user");
    private static final Set<String> MESSAGE_FIELDS = Set.of("role", "content", "name");

    private final Scheduler scheduler;
    private final ServeSettings settings;
    private final Tokenizer tokenizer;
    private final ChatTemplate chatTemplate;
    private final String routing;
    private final HttpServer http;
    private final ExecutorService workers;
    private final long created = Instant.now().getEpochSecond();
    private final Gson gson = new GsonBuilder().disableHtmlEscaping().serializeNulls().create();

    /**
     * Starts serving at {@code bind} (port 0: any free port, see {@link #address()}).
     *
     * @param routing how the model routes, for /v1/models (e.g. "dense")
     */
    public OpenAiServer(Scheduler scheduler, Tokenizer tokenizer, String routing, InetSocketAddress bind)
            throws IOException {
        this.scheduler = scheduler;
        this.settings = scheduler.settings();
        this.tokenizer = tokenizer;
        this.chatTemplate = ChatTemplates.of(tokenizer);
        this.routing = routing;
        this.http = HttpServer.create(bind, 256);
        // Every running or queued request holds a thread while it waits; a few more answer everything else.
        AtomicInteger n = new AtomicInteger();
        this.workers = Executors.newFixedThreadPool(settings.maxBatch() + settings.maxQueue() + 8, r -> {
            Thread t = new Thread(r, "skipgpt-http-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        http.setExecutor(workers);
        http.createContext("/", this::handle);
        http.start();
    }

    public InetSocketAddress address() {
        return http.getAddress();
    }

    /** Which chat template /v1/chat/completions uses, as /v1/models reports it. */
    public String chatTemplate() {
        return chatTemplate.describe();
    }

    @Override
    public void close() {
        scheduler.close();
        http.stop(1);
        workers.shutdownNow();
    }

    private void handle(HttpExchange ex) {
        try {
            route(ex);
        } catch (ApiError e) {
            sendQuietly(ex, e.status, e.json());
        } catch (IOException e) {
            // the client went away; nothing to answer
        } catch (RuntimeException e) {
            System.err.println("serve: internal error: " + e);
            sendQuietly(ex, 500, new ApiError(500, "server_error", "internal error: " + e, null, null).json());
        } finally {
            ex.close();
        }
    }

    private void route(HttpExchange ex) throws ApiError, IOException {
        String path = ex.getRequestURI().getPath();
        if (path.equals("/health")) {
            method(ex, "GET");
            send(ex, 200, health());
            return;
        }
        if (!path.equals("/v1") && !path.startsWith("/v1/")) throw unknownUrl(ex);
        authorise(ex);
        switch (path) {
            case "/v1/models" -> {
                method(ex, "GET");
                JsonObject list = new JsonObject();
                list.addProperty("object", "list");
                JsonArray data = new JsonArray();
                data.add(model());
                list.add("data", data);
                send(ex, 200, list);
            }
            case "/v1/completions" -> {
                method(ex, "POST");
                generate(ex, false);
            }
            case "/v1/chat/completions" -> {
                method(ex, "POST");
                generate(ex, true);
            }
            default -> {
                if (!path.startsWith("/v1/models/")) throw unknownUrl(ex);
                method(ex, "GET");
                String id = path.substring("/v1/models/".length());
                if (!id.equals(settings.modelName())) throw noSuchModel(id);
                send(ex, 200, model());
            }
        }
    }

    private static ApiError unknownUrl(HttpExchange ex) {
        return new ApiError(404, "invalid_request_error", "Unknown request URL: " + ex.getRequestMethod() + " "
                + ex.getRequestURI().getPath(), null, "unknown_url");
    }

    private static ApiError noSuchModel(String id) {
        return new ApiError(404, "invalid_request_error", "The model '" + id + "' does not exist", "model",
                "model_not_found");
    }

    private static void method(HttpExchange ex, String allowed) throws ApiError {
        if (!ex.getRequestMethod().equals(allowed)) {
            ex.getResponseHeaders().set("Allow", allowed);
            throw new ApiError(405, "invalid_request_error", "Method " + ex.getRequestMethod() + " is not allowed for "
                    + ex.getRequestURI().getPath() + "; use " + allowed, null, "method_not_allowed");
        }
    }

    private void authorise(HttpExchange ex) throws ApiError {
        if (settings.apiKey() == null) return;
        String header = ex.getRequestHeaders().getFirst("Authorization");
        ex.getResponseHeaders().set("WWW-Authenticate", "Bearer");
        if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
            throw new ApiError(401, "invalid_request_error", "You didn't provide an API key: send it as the header "
                    + "'Authorization: Bearer KEY'", null, "missing_api_key");
        }
        byte[] given = header.substring(7).strip().getBytes(StandardCharsets.UTF_8);
        if (!MessageDigest.isEqual(given, settings.apiKey().getBytes(StandardCharsets.UTF_8))) {
            throw new ApiError(401, "invalid_request_error", "Incorrect API key provided", null, "invalid_api_key");
        }
    }

    private JsonObject health() {
        Scheduler.Snapshot s = scheduler.snapshot();
        JsonObject o = new JsonObject();
        o.addProperty("status", "ok");
        o.addProperty("model", settings.modelName());
        o.addProperty("running", s.running());
        o.addProperty("queued", s.queued());
        o.addProperty("free_caches", s.freeCaches());
        o.addProperty("caches", s.caches());
        o.addProperty("passes", s.passes());
        o.addProperty("prompt_tokens", s.promptTokens());
        o.addProperty("generated_tokens", s.generatedTokens());
        if (s.moduleSparsity() != null) o.addProperty("module_sparsity", s.moduleSparsity());
        if (s.flopBound() != null) o.addProperty("flop_bound", s.flopBound());
        // CPU time of the whole server process (model, scheduler, HTTP): on a shared machine, CPU per token
        // says more than wall-clock speed.
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            o.addProperty("process_cpu_seconds", os.getProcessCpuTime() / 1e9);
        }
        return o;
    }

    private JsonObject model() {
        JsonObject o = new JsonObject();
        o.addProperty("id", settings.modelName());
        o.addProperty("object", "model");
        o.addProperty("created", created);
        o.addProperty("owned_by", "skipgpt");
        o.addProperty("max_request_tokens", settings.longestRequest());
        o.addProperty("max_batch", settings.maxBatch());
        o.addProperty("routing", routing);
        o.addProperty("chat_template", chatTemplate.describe());
        return o;
    }

    // ---- completions ----

    /** A validated request: what to run and how to answer. */
    private record Job(GenerationRequest request, boolean chat, boolean stream, boolean includeUsage) {}

    private void generate(HttpExchange ex, boolean chat) throws ApiError, IOException {
        Job job = parse(readJson(ex), chat);
        Sequence seq;
        try {
            seq = scheduler.submit(job.request());
        } catch (IllegalArgumentException e) {
            throw new ApiError(400, "invalid_request_error", e.getMessage(), null, "context_length_exceeded");
        } catch (RejectedExecutionException e) {
            throw new ApiError(429, "server_busy", e.getMessage(), null, "queue_full");
        } catch (IllegalStateException e) {
            throw new ApiError(503, "server_error", e.getMessage(), null, "shutting_down");
        }
        String id = (chat ? "chatcmpl-" : "cmpl-") + Long.toHexString(ThreadLocalRandom.current().nextLong());
        long now = Instant.now().getEpochSecond();
        try {
            if (job.stream()) stream(ex, seq, job, id, now);
            else answer(ex, seq, job, id, now);
        } catch (InterruptedException e) {
            seq.cancel();
            Thread.currentThread().interrupt();
        } catch (IOException e) {
            seq.cancel(); // the client is gone: free its place in the batch
            throw e;
        }
    }

    private Job parse(JsonObject body, boolean chat) throws ApiError {
        RequestFields f = new RequestFields(body, chat ? CHAT_FIELDS : COMPLETION_FIELDS, "");
        String model = f.string("model", settings.modelName());
        if (!model.equals(settings.modelName())) throw noSuchModel(model);
        f.integer("n", 1, 1);
        f.string("user", null);
        boolean stream = f.bool("stream", false);
        boolean includeUsage = false;
        JsonObject options = f.object("stream_options");
        if (options != null) {
            if (!stream) throw ApiError.invalid("stream_options is only allowed with \"stream\": true", "stream_options");
            includeUsage = new RequestFields(options, Set.of("include_usage"), "stream_options.")
                    .bool("include_usage", false);
        }
        double temperature = f.number("temperature", 1.0, 0.0, false, 2.0);
        double topP = f.number("top_p", 1.0, 0.0, true, 1.0);
        Long seed = f.integer("seed", Long.MIN_VALUE, Long.MAX_VALUE);
        List<String> stop = f.strings("stop", MAX_STOP_STRINGS);
        String tokensField = chat && f.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        if (chat && f.has("max_tokens") && f.has("max_completion_tokens")) {
            throw ApiError.invalid("give max_tokens or max_completion_tokens, not both", "max_completion_tokens");
        }
        Long maxTokens = f.integer(tokensField, 1, Integer.MAX_VALUE);

        int[] prompt;
        String promptField = chat ? "messages" : "prompt";
        if (chat) {
            prompt = chatPrompt(f.array("messages"));
        } else {
            JsonElement p = f.get("prompt");
            if (p == null) throw ApiError.invalid("Missing required parameter: prompt", "prompt");
            if (!p.isJsonPrimitive() || !p.getAsJsonPrimitive().isString()) {
                throw ApiError.invalid("prompt must be a string (arrays of prompts or of token ids are not supported)",
                        "prompt");
            }
            if (p.getAsString().isEmpty()) throw ApiError.invalid("prompt is empty", "prompt");
            prompt = tokenizer.encodeWithBos(p.getAsString());
        }
        int limit = settings.longestRequest();
        if (prompt.length >= limit) {
            throw new ApiError(400, "invalid_request_error", "This model serves at most " + limit + " tokens per "
                    + "request (prompt + completion); the prompt alone has " + prompt.length + " tokens",
                    promptField, "context_length_exceeded");
        }
        int completion;
        if (maxTokens == null) {
            completion = limit - prompt.length;
            if (!chat) completion = Math.min(DEFAULT_COMPLETION_TOKENS, completion);
        } else if (prompt.length + maxTokens > limit) {
            throw new ApiError(400, "invalid_request_error", "This model serves at most " + limit + " tokens per "
                    + "request; you asked for " + (prompt.length + maxTokens) + " (" + prompt.length + " in the "
                    + promptField + ", " + maxTokens + " in the completion)", tokensField, "context_length_exceeded");
        } else {
            completion = maxTokens.intValue();
        }
        long s = seed != null ? seed : ThreadLocalRandom.current().nextLong();
        return new Job(new GenerationRequest(prompt, completion, (float) temperature, (float) topP, s, stop), chat,
                stream, includeUsage);
    }

    private int[] chatPrompt(JsonArray messages) throws ApiError {
        if (messages.isEmpty()) throw ApiError.invalid("messages is empty", "messages");
        List<ChatTemplate.Message> list = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            String at = "messages[" + i + "]";
            if (!messages.get(i).isJsonObject()) throw ApiError.invalid(at + " must be an object", at);
            RequestFields m = new RequestFields(messages.get(i).getAsJsonObject(), MESSAGE_FIELDS, at + ".");
            String role = m.string("role", null);
            if (role == null) throw ApiError.invalid("Missing required parameter: " + at + ".role", at + ".role");
            if (role.equals("developer")) role = "system";
            if (!Set.of("system", "user", "assistant").contains(role)) {
                throw ApiError.invalid(at + ".role must be system, developer, user or assistant, got '" + role + "'",
                        at + ".role");
            }
            m.string("name", null);
            list.add(new ChatTemplate.Message(role, content(m.get("content"), at + ".content")));
        }
        String text;
        try {
            text = chatTemplate.render(list);
        } catch (IllegalArgumentException e) {
            throw ApiError.invalid("the chat template refused the messages: " + e.getMessage(), "messages");
        }
        int[] ids = tokenizer.encode(text);
        // A template that writes the BOS token itself has it encoded already.
        return ids.length > 0 && ids[0] == tokenizer.bos() ? ids : tokenizer.withBos(ids);
    }

    // A message's content: a string, or an array of {"type": "text", "text": ...} parts joined.
    private static String content(JsonElement e, String at) throws ApiError {
        if (e == null) throw ApiError.invalid("Missing required parameter: " + at, at);
        if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isString()) return e.getAsString();
        if (!e.isJsonArray()) throw ApiError.invalid(at + " must be a string or an array of text parts", at);
        StringBuilder b = new StringBuilder();
        JsonArray parts = e.getAsJsonArray();
        for (int i = 0; i < parts.size(); i++) {
            String p = at + "[" + i + "]";
            if (!parts.get(i).isJsonObject()) throw ApiError.invalid(p + " must be an object", p);
            RequestFields part = new RequestFields(parts.get(i).getAsJsonObject(), Set.of("type", "text"), p + ".");
            if (!"text".equals(part.string("type", null))) {
                throw ApiError.invalid(p + ".type must be \"text\" (only text parts are supported)", p + ".type");
            }
            String text = part.string("text", null);
            if (text == null) throw ApiError.invalid("Missing required parameter: " + p + ".text", p + ".text");
            b.append(text);
        }
        return b.toString();
    }


    private JsonObject readJson(HttpExchange ex) throws ApiError, IOException {
        byte[] bytes = ex.getRequestBody().readNBytes(MAX_BODY_BYTES + 1);
        if (bytes.length > MAX_BODY_BYTES) {
            throw new ApiError(413, "invalid_request_error", "the request body is larger than " + MAX_BODY_BYTES
                    + " bytes", null, "request_too_large");
        }
        JsonElement e;
        try {
            JsonReader reader = new JsonReader(new StringReader(new String(bytes, StandardCharsets.UTF_8)));
            reader.setStrictness(Strictness.STRICT);
            e = gson.getAdapter(JsonElement.class).read(reader);
            if (reader.peek() != JsonToken.END_DOCUMENT) throw new JsonParseException("text after the JSON value");
        } catch (JsonParseException | IOException | IllegalStateException bad) {
            String why = bad.getMessage() == null ? bad.toString() : bad.getMessage().lines().findFirst().orElse("");
            throw ApiError.invalid("We could not parse the JSON body of your request: " + why, null);
        }
        if (e == null || !e.isJsonObject()) throw ApiError.invalid("the request body must be a JSON object", null);
        return e.getAsJsonObject();
    }

    // ---- answers ----

    private void answer(HttpExchange ex, Sequence seq, Job job, String id, long now)
            throws ApiError, IOException, InterruptedException {
        StringBuilder text = new StringBuilder();
        while (true) {
            Event e = seq.events().take();
            if (e instanceof Event.Text t) {
                text.append(t.text());
            } else if (e instanceof Event.Failed f) {
                throw new ApiError(500, "server_error", f.message(), null, null);
            } else {
                Event.Done d = (Event.Done) e;
                JsonObject choice = new JsonObject();
                choice.addProperty("index", 0);
                if (job.chat()) {
                    choice.add("message", message("assistant", text.toString()));
                } else {
                    choice.addProperty("text", text.toString());
                    choice.add("logprobs", JsonNull.INSTANCE);
                }
                choice.addProperty("finish_reason", d.finishReason());
                JsonObject o = envelope(id, job.chat() ? "chat.completion" : "text_completion", now, choice);
                o.add("usage", usage(d));
                send(ex, 200, o);
                return;
            }
        }
    }

    private void stream(HttpExchange ex, Sequence seq, Job job, String id, long now)
            throws IOException, InterruptedException {
        ex.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
        ex.getResponseHeaders().set("Cache-Control", "no-cache");
        ex.sendResponseHeaders(200, 0);
        OutputStream out = ex.getResponseBody();
        String object = job.chat() ? "chat.completion.chunk" : "text_completion";
        if (job.chat()) event(out, envelope(id, object, now, streamChoice(job, message("assistant", ""), null)));
        List<Event> ready = new ArrayList<>();
        while (true) {
            Event first = seq.events().poll(KEEP_ALIVE_MILLIS, TimeUnit.MILLISECONDS);
            if (first == null) {
                out.write(": keep-alive\n\n".getBytes(StandardCharsets.UTF_8));
                out.flush();
                continue;
            }
            // A connection that fell behind sends the text that piled up as one event, not one per token.
            ready.clear();
            ready.add(first);
            seq.events().drainTo(ready);
            StringBuilder text = new StringBuilder();
            for (Event e : ready) {
                if (e instanceof Event.Text t) {
                    text.append(t.text());
                    continue;
                }
                if (text.length() > 0) textEvent(out, job, id, object, now, text.toString());
                text.setLength(0);
                if (e instanceof Event.Failed f) {
                    event(out, new ApiError(500, "server_error", f.message(), null, null).json());
                } else {
                    Event.Done d = (Event.Done) e;
                    event(out, envelope(id, object, now, streamChoice(job, job.chat() ? new JsonObject() : "",
                            d.finishReason())));
                    if (job.includeUsage()) {
                        JsonObject last = envelope(id, object, now, null);
                        last.add("usage", usage(d));
                        event(out, last);
                    }
                    out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
                    out.flush();
                }
                return;
            }
            textEvent(out, job, id, object, now, text.toString());
        }
    }

    private void textEvent(OutputStream out, Job job, String id, String object, long now, String text)
            throws IOException {
        JsonObject delta = new JsonObject();
        delta.addProperty("content", text);
        event(out, envelope(id, object, now, streamChoice(job, job.chat() ? delta : text, null)));
    }

    // A streamed choice: a chat delta object, or a completion's text piece.
    private static JsonObject streamChoice(Job job, Object delta, String finishReason) {
        JsonObject choice = new JsonObject();
        choice.addProperty("index", 0);
        if (job.chat()) {
            choice.add("delta", (JsonObject) delta);
        } else {
            choice.addProperty("text", (String) delta);
            choice.add("logprobs", JsonNull.INSTANCE);
        }
        if (finishReason == null) choice.add("finish_reason", JsonNull.INSTANCE);
        else choice.addProperty("finish_reason", finishReason);
        return choice;
    }

    private JsonObject envelope(String id, String object, long now, JsonObject choice) {
        JsonObject o = new JsonObject();
        o.addProperty("id", id);
        o.addProperty("object", object);
        o.addProperty("created", now);
        o.addProperty("model", settings.modelName());
        JsonArray choices = new JsonArray();
        if (choice != null) choices.add(choice);
        o.add("choices", choices);
        return o;
    }

    private static JsonObject message(String role, String content) {
        JsonObject m = new JsonObject();
        m.addProperty("role", role);
        m.addProperty("content", content);
        return m;
    }

    private static JsonObject usage(Event.Done d) {
        JsonObject u = new JsonObject();
        u.addProperty("prompt_tokens", d.promptTokens());
        u.addProperty("completion_tokens", d.completionTokens());
        u.addProperty("total_tokens", d.promptTokens() + d.completionTokens());
        return u;
    }

    private void event(OutputStream out, JsonObject o) throws IOException {
        out.write(("data: " + gson.toJson(o) + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private void send(HttpExchange ex, int status, JsonObject body) throws IOException {
        byte[] bytes = gson.toJson(body).getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, bytes.length);
        ex.getResponseBody().write(bytes);
    }

    private void sendQuietly(HttpExchange ex, int status, JsonObject body) {
        try {
            send(ex, status, body);
        } catch (IOException | RuntimeException ignored) {
            // headers already sent or the client is gone: nothing more to say
        }
    }
}
