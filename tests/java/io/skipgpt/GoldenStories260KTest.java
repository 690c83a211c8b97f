package io.skipgpt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.cli.Main;
import io.skipgpt.eval.Perplexity;
import io.skipgpt.infer.Generator;
import io.skipgpt.infer.Sampler;
import io.skipgpt.io.LoadedModel;
import io.skipgpt.io.ModelLoader;
import io.skipgpt.model.KvCache;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tensor.Tensor;
import io.skipgpt.testing.SharedData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The real stories260K model against golden values from an independent float64 forward pass
 * ({@code shared/data/README.md}), in all three formats: GGUF, llama2.c, and a Hugging Face directory this
 * project converts the GGUF into.
 */
class GoldenStories260KTest {
    static final int[] ONCE_UPON_A_TIME = {403, 407, 261, 378};
    static final float[] BOS_LOGITS = {-6.22291f, 8.40434f, -6.22374f, -6.22254f, -6.22195f, -6.22288f, -6.22188f, -6.22342f};
    static final int[] GREEDY_40 = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401,
            396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352};

    @TempDir
    static Path tmp;

    static Stream<String> formats() {
        return Stream.of("gguf", "llama2c", "hf");
    }

    static Path model(String format) {
        Path gguf = SharedData.require("models/stories260K/stories260K.gguf");
        return switch (format) {
            case "gguf" -> gguf;
            case "llama2c" -> SharedData.require("models/stories260K/stories260K.bin");
            default -> {
                Path dir = tmp.resolve("stories260K-hf");
                if (!Files.exists(dir)) {
                    assertEquals(0, Main.run("convert", "--model", gguf.toString(), "--out", dir.toString()));
                }
                yield dir;
            }
        };
    }

    @ParameterizedTest
    @MethodSource("formats")
    void encodesLogitsAndGreedyStory(String format) throws Exception {
        try (LoadedModel m = ModelLoader.load(model(format), null); Backend b = new CpuBackend();
                LlamaModel model = new LlamaModel(m.config(), m.weights(), b)) {
            assertArrayEquals(ONCE_UPON_A_TIME, m.tokenizer().encode("Once upon a time"), format);
            try (KvCache cache = model.newCache(1); Tensor logits = Tensor.f32(1, m.config().vocabSize())) {
                model.forward(new int[] {1}, cache, logits);
                for (int i = 0; i < BOS_LOGITS.length; i++) assertEquals(BOS_LOGITS[i], logits.get(i), 1e-4, format + " logit " + i);
            }
            Generator.Result r = new Generator(model, m.tokenizer()).generate("", 40, Sampler.greedy(), null);
            assertArrayEquals(GREEDY_40, r.tokens(), format);
            assertTrue(r.text().startsWith("Once upon a time, there was a little girl named Lily."), r.text());
        }
    }

    @ParameterizedTest
    @MethodSource("formats")
    void perplexityOnTinyStoriesHead(String format) throws Exception {
        String text = Files.readString(SharedData.require("text/tinystories_valid_head.txt"));
        try (LoadedModel m = ModelLoader.load(model(format), null); Backend b = new CpuBackend();
                LlamaModel model = new LlamaModel(m.config(), m.weights(), b)) {
            Perplexity.Result r = new Perplexity(model, m.tokenizer(), 512).score(text, null);
            assertEquals(14829, r.tokens());
            assertEquals(46, r.documents());
            assertEquals(1.22587, r.meanNll(), 5e-5);
            assertEquals(3.4071, r.ppl(), 2e-4);
        }
    }
}
