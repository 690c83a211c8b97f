package io.skipgpt.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The token bound admits a request only while the running ones' prompt + max_tokens leave room for it. */
class AdmissionTest {
    @Test
    @Timeout(60) // a hang guard
    void tokenBoundRunsRequestsOneAtATime() throws Exception {
        // Each request reserves 11 + 20 = 31 tokens; 40 admit one at a time although the batch has room for four.
        try (TestServer s = new TestServer(TestServer.settings(4, 64, 40, 64, 8, null), null)) {
            List<JsonObject> bodies = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                JsonObject b = new JsonObject();
                b.addProperty("prompt", "abcdefghi" + i);
                b.addProperty("max_tokens", 20);
                b.addProperty("temperature", 0);
                bodies.add(b);
            }
            List<LoadGenerator.Outcome> outcomes = new LoadGenerator(s.url, null).run("/v1/completions", bodies, 4);
            long samplings = 0;
            for (LoadGenerator.Outcome o : outcomes) {
                assertNull(o.error(), o.error());
                samplings += o.completionTokens() + (o.finishReason().equals("stop") ? 1 : 0);
            }
            JsonObject h = s.awaitIdle();
            // Every pass carried exactly one sequence: passes = sampled tokens (EOS included).
            assertEquals(samplings, h.get("passes").getAsLong());
            assertEquals(44, h.get("prompt_tokens").getAsLong());
            assertEquals(4, h.get("free_caches").getAsInt());
        }
    }
}
