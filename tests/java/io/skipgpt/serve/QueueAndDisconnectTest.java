package io.skipgpt.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Admission: with the batch and the queue full, a request is refused with 429. A client that disconnects,
 * running or queued, has its sequence cancelled and its cache returned.
 */
class QueueAndDisconnectTest {
    static final int LONG = 65000; // far more tokens than are generated before a disconnect is noticed

    @Test
    @Timeout(60) // a hang guard
    void fullQueueRefusesAndDisconnectsFreeTheirPlaces() throws Exception {
        try (TestServer s = new TestServer(TestServer.settings(1, 65536, 65536, 64, 1, null), null)) {
            String body = "{\"prompt\": \"go\", \"max_tokens\": " + LONG + ", \"temperature\": 0, \"stream\": true}";
            try (Socket running = stream(s, body)) {
                BufferedReader in = reader(running);
                readHeaders(in);
                String first = nextData(in); // generating now: the single batch place is taken
                assertTrue(first.startsWith("data: {"), first);
                try (Socket queued = stream(s, body)) {
                    readHeaders(reader(queued)); // answered at once, then it waits in the queue
                    awaitHealth(s, "queued", 1);
                    HttpResponseCheck.refused(s.post("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 1}"));
                }
                // The queued client is gone: a keep-alive comment finds out and its request leaves the queue.
                awaitHealth(s, "queued", 0);
                assertEquals(1, s.health().get("running").getAsInt());
            }
            JsonObject h = s.awaitIdle();
            assertEquals(0, h.get("running").getAsInt());
            assertEquals(1, h.get("free_caches").getAsInt(), "the cancelled sequence's cache is back");
            long generated = h.get("generated_tokens").getAsLong();
            assertTrue(generated < LONG, "generation stopped at the disconnect, after " + generated + " tokens");
            // And the server still serves.
            assertEquals(200, s.post("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 2}").statusCode());
        }
    }

    /** The 429 answer of a full queue. */
    static final class HttpResponseCheck {
        static void refused(java.net.http.HttpResponse<String> r) {
            assertEquals(429, r.statusCode(), r.body());
            JsonObject e = JsonParser.parseString(r.body()).getAsJsonObject().getAsJsonObject("error");
            assertEquals("queue_full", e.get("code").getAsString());
            assertEquals("server_busy", e.get("type").getAsString());
        }
    }

    // A raw connection, so the test decides exactly when the client goes away.
    private static Socket stream(TestServer s, String body) throws IOException {
        Socket socket = new Socket("127.0.0.1", s.url.getPort());
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        OutputStream out = socket.getOutputStream();
        out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Content-Length: " + bytes.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
        out.write(bytes);
        out.flush();
        return socket;
    }

    private static BufferedReader reader(Socket socket) throws IOException {
        return new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
    }

    private static void readHeaders(BufferedReader in) throws IOException {
        String status = in.readLine();
        assertEquals("HTTP/1.1 200 OK", status);
        for (String line = in.readLine(); line != null && !line.isEmpty(); line = in.readLine()) {
            if (line.toLowerCase().startsWith("content-type:")) assertTrue(line.contains("text/event-stream"), line);
        }
    }

    // The next line carrying an SSE data field (chunk-size lines of the chunked encoding are skipped).
    private static String nextData(BufferedReader in) throws IOException {
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            if (line.startsWith("data: ")) return line;
        }
        throw new IOException("the stream ended");
    }

    private static void awaitHealth(TestServer s, String field, int value) throws Exception {
        while (s.health().get(field).getAsInt() != value) Thread.sleep(20);
    }
}
