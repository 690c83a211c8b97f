package io.skipgpt.io;

import static io.skipgpt.io.TestModels.assertMessage;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.tokenizer.HfTokenizer;
import io.skipgpt.tokenizer.Llama2cTokenizer;
import io.skipgpt.tokenizer.SentencePieceBpe;
import io.skipgpt.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelLoaderTest {
    @TempDir
    Path dir;

    @Test
    void unusablePathsAreReported() throws Exception {
        Path none = dir.resolve("nothing-here.gguf");
        assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(none, null)), none,
                "no such file or directory");
        Path text = Files.writeString(dir.resolve("notes.txt"), "hello");
        assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(text, null)), text,
                "unrecognised model format");
        try (LoadedModel m = TestModels.random(TestModels.config(true), 40)) {
            Path gguf = dir.resolve("m.gguf");
            Gguf.write(gguf, m, false);
            Path noTok = dir.resolve("missing-tokenizer.json");
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(gguf, noTok)), noTok,
                    "no such file or directory");
        }
    }

    @Test
    void aTokenizerOverrideReplacesTheModelsOwn() throws Exception {
        try (LoadedModel m = TestModels.random(TestModels.config(true), 41)) {
            Path gguf = dir.resolve("m.gguf");
            Gguf.write(gguf, m, false);
            Path hf = dir.resolve("hf");
            HfDirectory.write(hf, m);
            try (LoadedModel withJson = ModelLoader.load(gguf, hf.resolve("tokenizer.json"));
                 LoadedModel withDir = ModelLoader.load(gguf, hf);
                 LoadedModel hfWithGgufTokenizer = ModelLoader.load(hf, gguf)) {
                assertTrue(withJson.tokenizer() instanceof HfTokenizer);
                assertTrue(withDir.tokenizer() instanceof HfTokenizer);
                assertTrue(hfWithGgufTokenizer.tokenizer() instanceof SentencePieceBpe);
            }
            Path bin = dir.resolve("t.bin");
            Llama2cTokenizer.write(bin, (SentencePieceBpe) m.tokenizer());
            Tokenizer t = ModelLoader.loadTokenizer(bin);
            assertArrayEquals(m.tokenizer().encode("abc de"), t.encode("abc de"));
            assertEquals(m.tokenizer().vocabSize(), ModelLoader.loadTokenizer(gguf).vocabSize());
        }
    }
}
