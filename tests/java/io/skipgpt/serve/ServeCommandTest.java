package io.skipgpt.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.skipgpt.cli.Main;
import io.skipgpt.testing.SharedData;
import io.skipgpt.testing.TestAdapters;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The serve and serve-bench commands as a newcomer uses them, on the real stories260K. */
class ServeCommandTest {
    @Test
    void helpShowsExamples() {
        for (String command : List.of("serve", "serve-bench")) {
            String out = captureOut(() -> assertEquals(0, Main.run(command, "--help")));
            assertTrue(out.contains("Example") && out.contains("skipgpt " + command), out);
        }
    }

    @Test
    @Timeout(60) // a hang guard
    void serveStories260KThenBenchIt() throws Exception {
        Path model = SharedData.require("models/stories260K/stories260K.gguf");
        int port;
        try (ServerSocket probe = new ServerSocket(0)) {
            port = probe.getLocalPort();
        }
        AtomicInteger code = new AtomicInteger(-1);
        Thread serve = new Thread(() -> code.set(Main.run("serve", "--model", model.toString(), "--device", "cpu",
                "--port", Integer.toString(port), "--ctx", "512", "--max-batch", "4", "--skip", "attn:1")));
        serve.start();
        try {
            LoadGenerator client = new LoadGenerator(URI.create("http://127.0.0.1:" + port), null);
            JsonObject models = awaitUp(client);
            JsonObject m = models.getAsJsonArray("data").get(0).getAsJsonObject();
            assertEquals("stories260K", m.get("id").getAsString());
            assertEquals("static skip attn:1", m.get("routing").getAsString());

            JsonObject body = new JsonObject();
            body.addProperty("model", "stories260K");
            body.addProperty("prompt", "Once upon a time");
            body.addProperty("max_tokens", 8);
            body.addProperty("temperature", 0);
            LoadGenerator.Outcome o = client.send("/v1/completions", body);
            assertEquals(null, o.error());
            assertTrue(o.text().startsWith(","), o.text());

            JsonObject chat = new JsonObject();
            JsonArray messages = new JsonArray();
            JsonObject message = new JsonObject();
            message.addProperty("role", "user");
            message.addProperty("content", "Tell me a story.");
            messages.add(message);
            chat.add("messages", messages);
            chat.addProperty("max_tokens", 4);
            assertEquals(null, client.send("/v1/chat/completions", chat).error());

            String bench = captureOut(() -> assertEquals(0, Main.run("serve-bench", "--url", "http://127.0.0.1:" + port,
                    "--concurrency", "1,3", "--rounds", "1", "--max-tokens", "4", "--warmup", "2", "--json")));
            JsonObject b = JsonParser.parseString(bench).getAsJsonObject();
            assertEquals("static skip attn:1", b.get("routing").getAsString());
            assertTrue(b.get("flop_bound").getAsDouble() > 1.0, "skipping an attention saves FLOPs: " + b);
            JsonArray levels = b.getAsJsonArray("levels");
            assertEquals(2, levels.size());
            for (int i = 0; i < 2; i++) {
                JsonObject level = levels.get(i).getAsJsonObject();
                assertEquals(i == 0 ? 1 : 3, level.get("requests").getAsInt());
                assertEquals(0, level.get("failed").getAsInt());
                assertEquals(4L * level.get("requests").getAsInt(), level.get("completion_tokens").getAsLong());
                assertEquals(0.1, level.get("module_sparsity").getAsDouble(), 1e-12, "one of 10 modules skipped");
                // The process CPU clock ticks coarsely (10 ms on some kernels) and four tiny-model tokens may
                // take less than one tick: require a real figure, not a positive one.
                double cpu = level.get("server_cpu_ms_per_token").getAsDouble();
                assertTrue(Double.isFinite(cpu) && cpu >= 0, level.toString());
            }
        } finally {
            serve.interrupt();
            serve.join();
        }
        assertEquals(0, code.get());
    }

    /** serve --lora applies the adapter: a greedy completion equals generate --lora's continuation. */
    @Test
    @Timeout(60)
    void servesWithALoraAdapter(@TempDir Path dir) throws Exception {
        Path model = SharedData.require("models/stories260K/stories260K.gguf");
        Path adapter = dir.resolve("adapter");
        TestAdapters.writeRandom(adapter, model, 3);
        String generated = captureOut(() -> assertEquals(0, Main.run("generate", "--model", model.toString(),
                "--lora", adapter.toString(), "--prompt", "Once upon a time", "--max-tokens", "12", "--device", "cpu")));
        String plain = captureOut(() -> assertEquals(0, Main.run("generate", "--model", model.toString(),
                "--prompt", "Once upon a time", "--max-tokens", "12", "--device", "cpu")));
        assertTrue(!generated.equals(plain), "the adapter changes the story: " + generated);
        int port;
        try (ServerSocket probe = new ServerSocket(0)) {
            port = probe.getLocalPort();
        }
        AtomicInteger code = new AtomicInteger(-1);
        Thread serve = new Thread(() -> code.set(Main.run("serve", "--model", model.toString(), "--device", "cpu",
                "--port", Integer.toString(port), "--ctx", "128", "--max-batch", "2", "--lora", adapter.toString())));
        serve.start();
        try {
            LoadGenerator client = new LoadGenerator(URI.create("http://127.0.0.1:" + port), null);
            awaitUp(client);
            JsonObject body = new JsonObject();
            body.addProperty("prompt", "Once upon a time");
            body.addProperty("max_tokens", 12);
            body.addProperty("temperature", 0);
            LoadGenerator.Outcome o = client.send("/v1/completions", body);
            assertEquals(null, o.error());
            assertEquals(generated.strip(), o.text().strip());
        } finally {
            serve.interrupt();
            serve.join();
        }
        assertEquals(0, code.get());
    }

    private static JsonObject awaitUp(LoadGenerator client) throws InterruptedException {
        while (true) {
            try {
                return client.get("/v1/models");
            } catch (java.io.IOException notYet) {
                Thread.sleep(50);
            }
        }
    }

    private static synchronized String captureOut(Runnable run) {
        PrintStream old = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            run.run();
        } finally {
            System.setOut(old);
        }
        return out.toString(StandardCharsets.UTF_8);
    }
}
