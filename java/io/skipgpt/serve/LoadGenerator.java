package io.skipgpt.serve;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.BufferedReader;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A small load generator for an OpenAI-compatible server: a number of clients, each sending its next request
 * as soon as its last one is answered, until every request is done. Streaming requests are read event by event
 * (time to first token, text, usage); others as one JSON answer. Used by {@code serve-bench} and by tests.
 * It speaks plain HTTP/1.1 over sockets (Content-Length and chunked bodies, keep-alive) rather than through
 * java.net.http.HttpClient, to keep its own CPU use small on a machine it shares with the server; that saving was
 * never measured against HttpClient (the tests use HttpClient), so it is a reason, not a figure.
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

    private final String host;
    private final int port;
    private final String apiKey;

    /** @param base the server, e.g. http://127.0.0.1:8080 ; @param apiKey a bearer token or null */
    public LoadGenerator(URI base, String apiKey) {
        if (!"http".equals(base.getScheme()) || base.getHost() == null) {
            throw new IllegalArgumentException("the server URL must be http://HOST:PORT, got " + base);
        }
        this.host = base.getHost();
        this.port = base.getPort() < 0 ? 80 : base.getPort();
        this.apiKey = apiKey;
    }

    /**
     * Sends every body to {@code path} (e.g. /v1/completions) from {@code clients} concurrent clients, each on
     * its own kept-alive connection, and returns the outcomes in the order of the bodies. A body with
     * {@code "stream": true} is read as server-sent events.
     */
    public List<Outcome> run(String path, List<JsonObject> bodies, int clients) throws InterruptedException {
        if (clients < 1) throw new IllegalArgumentException("clients must be >= 1");
        Outcome[] outcomes = new Outcome[bodies.size()];
        AtomicInteger next = new AtomicInteger();
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            Thread t = new Thread(() -> {
                try (Connection connection = new Connection()) {
                    for (int i = next.getAndIncrement(); i < bodies.size(); i = next.getAndIncrement()) {
                        outcomes[i] = connection.post(path, bodies.get(i));
                    }
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
    public JsonObject get(String path) throws IOException {
        try (Connection c = new Connection()) {
            Response r = c.exchange("GET", path, null);
            String text = new String(r.body().readAllBytes(), StandardCharsets.UTF_8);
            if (r.status() != 200) throw new IOException("GET " + path + ": HTTP " + r.status() + " " + text);
            return JsonParser.parseString(text).getAsJsonObject();
        }
    }

    /** One request on a connection of its own. */
    public Outcome send(String path, JsonObject body) {
        try (Connection c = new Connection()) {
            return c.post(path, body);
        }
    }

    private record Response(int status, InputStream body) {}

    /**
     * A plain HTTP/1.1 connection, opened on first use and kept alive between requests: cheap enough that the
     * load generator takes little CPU from a server on the same machine.
     */
    private final class Connection implements AutoCloseable {
        private Socket socket;
        private InputStream in;
        private OutputStream out;
        private boolean closeAfter;

        Outcome post(String path, JsonObject body) {
            boolean stream = body.has("stream") && body.get("stream").getAsBoolean();
            long start = System.nanoTime();
            try {
                Response r = exchange("POST", path, body.toString().getBytes(StandardCharsets.UTF_8));
                Outcome o;
                if (r.status() != 200) {
                    o = failed(r.status(), start, new String(r.body().readAllBytes(), StandardCharsets.UTF_8));
                } else {
                    o = stream ? readEvents(r.body(), start) : readAnswer(r.body(), start);
                }
                r.body().transferTo(OutputStream.nullOutputStream()); // the rest, so the connection can be reused
                if (closeAfter) close();
                return o;
            } catch (IOException | RuntimeException e) {
                close();
                return failed(-1, start, e.toString());
            }
        }

        // Sends a request and reads the response head. A kept-alive connection the server closed meanwhile
        // fails before any byte comes back: then once more on a new connection.
        Response exchange(String method, String path, byte[] body) throws IOException {
            boolean reused = socket != null;
            try {
                return attempt(method, path, body);
            } catch (EOFException e) {
                if (!reused) throw e;
                close();
                return attempt(method, path, body);
            }
        }

        private Response attempt(String method, String path, byte[] body) throws IOException {
            if (socket == null) {
                socket = new Socket(host, port);
                socket.setTcpNoDelay(true);
                in = new BufferedInputStream(socket.getInputStream());
                out = new BufferedOutputStream(socket.getOutputStream());
            }
            StringBuilder head = new StringBuilder(method).append(' ').append(path).append(" HTTP/1.1\r\nHost: ")
                    .append(host).append(':').append(port).append("\r\n");
            if (apiKey != null) head.append("Authorization: Bearer ").append(apiKey).append("\r\n");
            if (body != null) {
                head.append("Content-Type: application/json\r\nContent-Length: ").append(body.length).append("\r\n");
            }
            out.write(head.append("\r\n").toString().getBytes(StandardCharsets.UTF_8));
            if (body != null) out.write(body);
            out.flush();
            String status = line(in);
            if (status == null) throw new EOFException("the server closed the connection");
            String[] parts = status.split(" ", 3);
            if (parts.length < 2 || !parts[0].startsWith("HTTP/1.")) throw new IOException("not HTTP: " + status);
            long length = -1;
            boolean chunked = false;
            closeAfter = parts[0].equals("HTTP/1.0");
            for (String h = line(in); h != null && !h.isEmpty(); h = line(in)) {
                int colon = h.indexOf(':');
                if (colon < 0) continue;
                String name = h.substring(0, colon).strip().toLowerCase(), value = h.substring(colon + 1).strip();
                if (name.equals("content-length")) length = Long.parseLong(value);
                if (name.equals("transfer-encoding") && value.equalsIgnoreCase("chunked")) chunked = true;
                if (name.equals("connection") && value.equalsIgnoreCase("close")) closeAfter = true;
            }
            if (chunked) return new Response(Integer.parseInt(parts[1]), new ChunkedBody(in));
            if (length >= 0) return new Response(Integer.parseInt(parts[1]), new BoundedBody(in, length));
            closeAfter = true;
            return new Response(Integer.parseInt(parts[1]), in);
        }

        @Override
        public void close() {
            if (socket == null) return;
            try {
                socket.close();
            } catch (IOException ignored) {
                // closing anyway
            }
            socket = null;
        }
    }

    // A CRLF-terminated ASCII line, or null at the end of the stream.
    private static String line(InputStream in) throws IOException {
        StringBuilder b = new StringBuilder();
        for (int c = in.read(); ; c = in.read()) {
            if (c < 0) return b.length() == 0 ? null : b.toString();
            if (c == '\n') {
                int n = b.length();
                return n > 0 && b.charAt(n - 1) == '\r' ? b.substring(0, n - 1) : b.toString();
            }
            b.append((char) c);
        }
    }

    /** A body of Content-Length bytes. */
    private static final class BoundedBody extends InputStream {
        private final InputStream in;
        private long left;

        BoundedBody(InputStream in, long length) {
            this.in = in;
            this.left = length;
        }

        @Override
        public int read() throws IOException {
            if (left == 0) return -1;
            int c = in.read();
            if (c < 0) throw new EOFException("the body ended early");
            left--;
            return c;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (left == 0) return -1;
            int n = in.read(b, off, (int) Math.min(len, left));
            if (n < 0) throw new EOFException("the body ended early");
            left -= n;
            return n;
        }
    }

    /** A body in chunked transfer encoding: hex size line, data, CRLF, ..., a zero chunk and trailers. */
    private static final class ChunkedBody extends InputStream {
        private final InputStream in;
        private long left; // of the current chunk
        private boolean done;

        ChunkedBody(InputStream in) {
            this.in = in;
        }

        private boolean ready() throws IOException {
            if (done) return false;
            if (left > 0) return true;
            String size = line(in);
            if (size == null) throw new EOFException("the chunked body ended early");
            int semicolon = size.indexOf(';');
            left = Long.parseLong((semicolon < 0 ? size : size.substring(0, semicolon)).strip(), 16);
            if (left == 0) {
                for (String trailer = line(in); trailer != null && !trailer.isEmpty(); trailer = line(in)) {
                    // trailers carry nothing we need
                }
                done = true;
                return false;
            }
            return true;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (!ready()) return -1;
            int n = in.read(b, off, (int) Math.min(len, left));
            if (n < 0) throw new EOFException("the chunked body ended early");
            left -= n;
            if (left == 0 && !"".equals(line(in))) throw new IOException("a chunk does not end with CRLF");
            return n;
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
