package io.skipgpt.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.skipgpt.infer.Generator;
import io.skipgpt.infer.Sampler;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.routing.RouterGate;
import io.skipgpt.routing.Routers;
import io.skipgpt.routing.Routing;
import io.skipgpt.tensor.CpuBackend;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Requests sent all at once give exactly what they give one at a time, and what the plain single-sequence
 * {@link Generator} gives: batching, queueing and prompts cut into pieces change nothing but speed.
 */
class ConcurrentRequestsTest {
    private record Call(String path, JsonObject body) {}

    // A small batch, a short pass budget and a token bound: requests queue, wait for tokens and are prefilled in pieces.
    private static final ServeSettings SETTINGS = TestServer.settings(4, 64, 90, 8, 64, null);

    @ParameterizedTest(name = "router seed {0} (0 = dense)")
    @ValueSource(longs = {0, 5})
    @Timeout(60)
    void concurrentEqualsOneAtATime(long routerSeed) throws Exception {
        List<Call> calls = calls();
        try (TestServer s = new TestServer(SETTINGS, routerSeed == 0 ? null : routerSeed)) {
            LoadGenerator load = new LoadGenerator(s.url, null);
            List<LoadGenerator.Outcome> serial = new ArrayList<>();
            for (Call c : calls) serial.add(load.send(c.path(), c.body()));
            long serialPasses = s.awaitIdle().get("passes").getAsLong();

            LoadGenerator.Outcome[] concurrent = new LoadGenerator.Outcome[calls.size()];
            CountDownLatch go = new CountDownLatch(1);
            List<Thread> threads = new ArrayList<>();
            for (int i = 0; i < calls.size(); i++) {
                int k = i;
                Thread t = new Thread(() -> {
                    try {
                        go.await();
                    } catch (InterruptedException e) {
                        return;
                    }
                    concurrent[k] = load.send(calls.get(k).path(), calls.get(k).body());
                });
                t.start();
                threads.add(t);
            }
            go.countDown();
            for (Thread t : threads) t.join();
            JsonObject health = s.awaitIdle();
            long concurrentPasses = health.get("passes").getAsLong() - serialPasses;

            List<String> reference = reference(calls, routerSeed);
            for (int i = 0; i < calls.size(); i++) {
                LoadGenerator.Outcome a = serial.get(i), b = concurrent[i];
                assertNull(a.error(), "request " + i + " alone: " + a.error());
                assertNull(b.error(), "request " + i + " concurrent: " + b.error());
                assertEquals(a.text(), b.text(), "request " + i + " text");
                assertEquals(a.finishReason(), b.finishReason(), "request " + i + " finish reason");
                assertEquals(a.completionTokens(), b.completionTokens(), "request " + i + " completion tokens");
                if (reference.get(i) != null) assertEquals(reference.get(i), a.text(), "request " + i + " vs Generator");
            }
            assertTrue(concurrentPasses < serialPasses, "requests in flight together share forward passes: "
                    + concurrentPasses + " passes concurrent, " + serialPasses + " one at a time");
            assertEquals(health.get("caches").getAsInt(), health.get("free_caches").getAsInt());
        }
    }

    // Completions and chats, streaming or not, greedy and seeded sampling, prompts of 1 to 30 characters.
    private static List<Call> calls() {
        List<Call> calls = new ArrayList<>();
        String[] prompts = {"a", "Once upon a time", "The quick brown fox jumps", "xyzzy", "hello, world",
                "0123456789012345678901234567890", "tea", "Some words", "Q", "the end is near", "more", "zz"};
        for (int i = 0; i < prompts.length; i++) {
            boolean chat = i % 3 == 2;
            JsonObject b = new JsonObject();
            if (chat) {
                JsonArray messages = new JsonArray();
                JsonObject m = new JsonObject();
                m.addProperty("role", "user");
                m.addProperty("content", prompts[i]);
                messages.add(m);
                b.add("messages", messages);
            } else {
                b.addProperty("prompt", prompts[i]);
            }
            b.addProperty("max_tokens", 3 + (i * 5) % 12);
            if (i == 4 || i == 7) {
                b.addProperty("temperature", 0.9);
                b.addProperty("seed", 100 + i);
            } else {
                b.addProperty("temperature", 0);
            }
            if (i % 2 == 1) {
                b.addProperty("stream", true);
                JsonObject options = new JsonObject();
                options.addProperty("include_usage", true);
                b.add("stream_options", options);
            }
            calls.add(new Call(chat ? "/v1/chat/completions" : "/v1/completions", b));
        }
        return calls;
    }

    // The single-sequence Generator's text for greedy completions (null for the others).
    private static List<String> reference(List<Call> calls, long routerSeed) {
        List<String> out = new ArrayList<>();
        try (CpuBackend backend = new CpuBackend();
                LlamaModel model = new LlamaModel(TestServer.CONFIG, TestServer.weights(), backend);
                Routers routers = Routers.initialise(TestServer.CONFIG.nLayers(), TestServer.CONFIG.dim(), routerSeed)) {
            Routing routing = routerSeed == 0 ? Routing.DENSE
                    : Routing.routed(new RouterGate(routers, backend, RouterGate.Mode.DETERMINISTIC, 0), null);
            Generator generator = new Generator(model, TestServer.TOKENIZER, routing);
            for (Call c : calls) {
                JsonObject b = c.body();
                boolean greedyCompletion = b.has("prompt") && b.get("temperature").getAsDouble() == 0;
                out.add(greedyCompletion ? generator.generate(b.get("prompt").getAsString(),
                        b.get("max_tokens").getAsInt(), Sampler.greedy(), null).text() : null);
            }
        }
        return out;
    }
}
