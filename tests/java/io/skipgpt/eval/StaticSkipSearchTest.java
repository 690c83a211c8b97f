package io.skipgpt.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.StaticSkip;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.testing.CharTokenizer;
import io.skipgpt.tokenizer.Tokenizer;
import java.util.List;
import org.junit.jupiter.api.Test;

class StaticSkipSearchTest {
    static final LlamaConfig CONFIG = new LlamaConfig(16, 24, 3, 4, 2, 40, 64, 10000f, 1e-5f, true);

    static final Tokenizer CHARS = new CharTokenizer(40);

    static final String TEXT = "a small calibration text\n<|endoftext|>\nwith two documents in it";

    @Test
    void exhaustiveAndGreedyFindTheBestSingleModule() {
        try (LlamaWeights w = RandomWeights.create(CONFIG, 9); Backend b = new CpuBackend();
                LlamaModel model = new LlamaModel(CONFIG, w, b)) {
            String best = null;
            double bestPpl = Double.MAX_VALUE;
            for (String spec : List.of("attn:0", "attn:1", "attn:2", "mlp:0", "mlp:1", "mlp:2")) {
                double ppl = new Perplexity(model, CHARS, 64, Routing.routed(StaticSkip.parse(spec, 3), null))
                        .score(TEXT, null).ppl();
                if (ppl < bestPpl) {
                    bestPpl = ppl;
                    best = spec;
                }
            }
            StaticSkipSearch search = new StaticSkipSearch(model, CHARS, TEXT, 64);
            StaticSkipSearch.Candidate exhaustive = search.best(1, 500, null);
            StaticSkipSearch.Candidate greedy = search.best(1, 0, null);
            assertEquals(best, exhaustive.spec());
            assertEquals(best, greedy.spec());
            assertEquals(bestPpl, exhaustive.ppl(), 1e-9);
            // Two modules: the exhaustive answer is at least as good as the greedy one.
            assertEquals(true, search.best(2, 500, null).ppl() <= search.best(2, 0, null).ppl() + 1e-9);
        }
    }

    @Test
    void specsAndCounts() {
        assertEquals("attn:1,mlp:0,mlp:2", StaticSkipSearch.spec(List.of(1, 3, 5), 3));
        assertEquals(210, StaticSkipSearch.binomial(10, 4));
        assertEquals(1, StaticSkipSearch.binomial(10, 0));
    }
}
