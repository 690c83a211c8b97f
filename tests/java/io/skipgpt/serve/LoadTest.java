package io.skipgpt.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Many clients at once on loopback: every request completes, nothing leaks, passes are shared. */
class LoadTest {
    @Test
    @Timeout(60) // a hang guard, not a speed check
    void sixtyFourClientsTwoHundredRequests() throws Exception {
        ServeSettings settings = TestServer.settings(16, 64, 16 * 64, 64, 64, null);
        try (TestServer s = new TestServer(settings, 9L)) {
            SplittableRandom random = new SplittableRandom(3);
            List<JsonObject> bodies = new ArrayList<>();
            for (int i = 0; i < 192; i++) {
                JsonObject b = new JsonObject();
                StringBuilder prompt = new StringBuilder();
                for (int c = random.nextInt(1, 24); c > 0; c--) prompt.append((char) random.nextInt('a', 'z' + 1));
                b.addProperty("prompt", prompt.toString());
                b.addProperty("max_tokens", random.nextInt(1, 7));
                b.addProperty("temperature", random.nextBoolean() ? 0 : 0.8);
                b.addProperty("stream", i % 2 == 0);
                bodies.add(b);
            }
            List<LoadGenerator.Outcome> outcomes = new LoadGenerator(s.url, null).run("/v1/completions", bodies, 64);
            for (int i = 0; i < outcomes.size(); i++) {
                LoadGenerator.Outcome o = outcomes.get(i);
                assertNull(o.error(), "request " + i + ": " + o.error());
                assertTrue(o.finishReason().equals("stop") || o.finishReason().equals("length"), o.finishReason());
                if (i % 2 == 1) {
                    int max = bodies.get(i).get("max_tokens").getAsInt();
                    assertTrue(o.completionTokens() >= 0 && o.completionTokens() <= max, "request " + i);
                    assertEquals(o.finishReason().equals("length"), o.completionTokens() == max, "request " + i);
                }
            }
            JsonObject health = s.awaitIdle();
            assertEquals(0, health.get("running").getAsInt());
            assertEquals(0, health.get("queued").getAsInt());
            assertEquals(16, health.get("free_caches").getAsInt(), "every cache back in the pool");
            long passes = health.get("passes").getAsLong(), generated = health.get("generated_tokens").getAsLong();
            assertTrue(passes < generated, "passes carry several sequences: " + passes + " passes, " + generated + " tokens");
        }
    }
}
