package io.skipgpt.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.io.ModelFormatException;
import io.skipgpt.io.TestData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class Llama2cTokenizerTest {
    @TempDir
    Path dir;

    @Test
    void readsSentencePiecePiecesAndWritesTheSameBytes() throws Exception {
        Path original = TestData.tok512();
        SentencePieceBpe t = Llama2cTokenizer.read(original);
        assertEquals(512, t.vocabSize());
        assertEquals("<s>", t.pieces()[1]);
        assertEquals("</s>", t.pieces()[2]);
        assertEquals("<0x0A>", t.pieces()[13]);
        assertEquals("▁t", t.pieces()[259]);
        assertEquals(-144f, t.scores()[403]);
        Path copy = dir.resolve("tok.bin");
        Llama2cTokenizer.write(copy, t);
        assertArrayEquals(Files.readAllBytes(original), Files.readAllBytes(copy));
    }

    @Test
    void roundTripsASyntheticTokenizer() throws Exception {
        String[] pieces = {"<unk>", "<s>", "</s>", "▁", "x", "▁x", "日本"};
        float[] scores = {0, 0, 0, -1, -2, 0.5f, -0f};
        Path file = dir.resolve("tokenizer.bin");
        Llama2cTokenizer.write(file, new SentencePieceBpe(pieces, scores, 1, 2));
        SentencePieceBpe back = Llama2cTokenizer.read(file);
        assertArrayEquals(pieces, back.pieces());
        assertTrue(Arrays.equals(scores, back.scores()));
    }

    @Test
    void truncatedAndMissingFilesAreReported() throws Exception {
        Path good = dir.resolve("good.bin");
        Llama2cTokenizer.write(good, new SentencePieceBpe(new String[] {"<unk>", "<s>", "</s>", "▁", "ab"},
                new float[] {0, 0, 0, -1, -2}, 1, 2));
        byte[] all = Files.readAllBytes(good);
        Path cut = dir.resolve("cut.bin");
        Files.write(cut, Arrays.copyOf(all, all.length - 3));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Llama2cTokenizer.read(cut));
        assertTrue(e.getMessage().startsWith(cut.toString()) && e.getMessage().contains("truncated"), e.getMessage());
        Path missing = dir.resolve("nope.bin");
        e = assertThrows(ModelFormatException.class, () -> Llama2cTokenizer.read(missing));
        assertTrue(e.getMessage().equals(missing + ": no such file"), e.getMessage());
    }
}
