package io.skipgpt.io;

import static io.skipgpt.io.TestModels.assertMessage;
import static io.skipgpt.io.TestModels.assertSameModel;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.skipgpt.model.LlamaConfig;
import io.skipgpt.tokenizer.Llama2cTokenizer;
import io.skipgpt.tokenizer.SentencePieceBpe;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class Llama2cCheckpointTest {
    @TempDir
    Path dir;

    private Path writeWithTokenizer(LoadedModel m, String name) throws Exception {
        Path file = dir.resolve(name);
        Llama2cCheckpoint.write(file, m);
        Llama2cTokenizer.write(dir.resolve("tokenizer.bin"), (SentencePieceBpe) m.tokenizer());
        return file;
    }

    @Test
    void writtenCheckpointsReadBackBitwise() throws Exception {
        for (boolean tied : new boolean[] {true, false}) {
            try (LoadedModel m = TestModels.random(TestModels.config(tied), 10)) {
                Path file = writeWithTokenizer(m, "m" + tied + ".bin");
                try (LoadedModel back = ModelLoader.load(file, null)) {
                    assertSameModel(m, back, true);
                    assertEquals("llama2.c", back.format());
                    assertEquals("F32", back.storedDtype());
                    assertEquals(300, back.tokenizer().vocabSize());
                }
            }
        }
    }

    @Test
    void theFormatCannotCarryOtherThetaOrEps() throws Exception {
        LlamaConfig c = new LlamaConfig(48, 80, 1, 6, 2, 300, 64, 500000f, 1e-5f, true);
        try (LoadedModel m = TestModels.random(c, 11)) {
            assertThrows(IllegalArgumentException.class, () -> Llama2cCheckpoint.write(dir.resolve("x.bin"), m));
        }
    }

    @Test
    void stories260KBinAndGgufHoldTheSameWeights() throws Exception {
        Path bin = TestData.stories260KBin();
        try (LoadedModel b = ModelLoader.load(bin, null); LoadedModel g = ModelLoader.load(TestData.stories260KGguf(), null)) {
            assertEquals(new LlamaConfig(64, 172, 5, 8, 4, 512, 512, 10000f, 1e-5f, true), b.config());
            assertSameModel(g, b, false); // every tensor, bitwise; only the context length differs
            assertArrayEquals(new int[] {403, 407, 261, 378}, b.tokenizer().encode("Once upon a time")); // tok512.bin beside

            // Writing it again reproduces the file, except the unused RoPE tables (float32 cos/sin of the exporter
            // differ from correctly rounded ones in the last bit).
            Path copy = dir.resolve("copy.bin");
            Llama2cCheckpoint.write(copy, b);
            byte[] original = Files.readAllBytes(bin), written = Files.readAllBytes(copy);
            assertEquals(original.length, written.length);
            int tables = 28 + 260_032 * 4;
            assertArrayEquals(Arrays.copyOf(original, tables), Arrays.copyOf(written, tables));
            ByteBuffer x = ByteBuffer.wrap(original).order(ByteOrder.LITTLE_ENDIAN);
            ByteBuffer y = ByteBuffer.wrap(written).order(ByteOrder.LITTLE_ENDIAN);
            for (int at = tables; at < original.length; at += 4) assertEquals(x.getFloat(at), y.getFloat(at), 1e-6f);
        }
    }

    @Test
    void badCheckpointsNameTheFileAndTheProblem() throws Exception {
        try (LoadedModel m = TestModels.random(TestModels.config(true), 12)) {
            Path good = writeWithTokenizer(m, "good.bin");
            byte[] all = Files.readAllBytes(good);

            Path cut = dir.resolve("cut.bin");
            Files.write(cut, Arrays.copyOf(all, all.length - 1));
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(cut, null)), cut,
                    "truncated", "dim=48 hidden_dim=80 n_layers=3 n_heads=6 n_kv_heads=2 vocab_size=300 seq_len=64",
                    "needs " + all.length + " bytes but the file has " + (all.length - 1));
            Path tail = dir.resolve("tail.bin");
            Files.write(tail, Arrays.copyOf(all, all.length + 4));
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(tail, null)), tail,
                    "unexpected trailing bytes");
            Path tiny = dir.resolve("tiny.bin");
            Files.write(tiny, new byte[] {1, 2, 3});
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(tiny, null)), tiny,
                    "truncated", "header");
            Path odd = dir.resolve("odd.bin");
            byte[] header = all.clone();
            ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN).putInt(12, 7); // n_heads 7 does not divide dim 48
            Files.write(odd, header);
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(odd, null)), odd,
                    "not a llama2.c checkpoint: implausible header", "n_heads=7");
            Path versioned = dir.resolve("v2.bin");
            Files.write(versioned, new byte[] {0x32, 0x34, 0x6b, 0x61, 2, 0, 0, 0});
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(versioned, null)), versioned,
                    "versioned export");
        }
    }

    @Test
    void tokenizerIsFoundBesideOrReportedMissing() throws Exception {
        try (LoadedModel m = TestModels.random(TestModels.config(true), 13)) {
            Path sub = Files.createDirectories(dir.resolve("sub"));
            Path file = sub.resolve("model.bin");
            Llama2cCheckpoint.write(file, m);
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(file, null)), file,
                    "missing tokenizer", "tokenizer.bin or tok*.bin");

            // Two candidates: the one with the model's vocabulary size wins.
            Llama2cTokenizer.write(sub.resolve("tok512.bin"), TestModels.tokenizer(512));
            Llama2cTokenizer.write(sub.resolve("tok300.bin"), (SentencePieceBpe) m.tokenizer());
            try (LoadedModel back = ModelLoader.load(file, null)) {
                assertEquals(300, back.tokenizer().vocabSize());
            }
            Llama2cTokenizer.write(sub.resolve("tokenizer.bin"), (SentencePieceBpe) m.tokenizer());
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(file, null)), file,
                    "ambiguous tokenizer");

            // An explicit tokenizer settles it; one larger than the model's vocabulary is refused.
            try (LoadedModel back = ModelLoader.load(file, sub.resolve("tok300.bin"))) {
                assertEquals(300, back.tokenizer().vocabSize());
            }
            Path big = sub.resolve("tok512.bin");
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(file, big)), big,
                    "512 tokens but the model's vocabulary has 300");
        }
    }

    @Test
    void appendedBytesAfterAValidFileAreNotIgnored() throws Exception {
        try (LoadedModel m = TestModels.random(TestModels.config(false), 14)) {
            Path file = writeWithTokenizer(m, "m.bin");
            Files.write(file, new byte[] {0, 0, 0, 0}, StandardOpenOption.APPEND);
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(file, null)), file,
                    "unexpected trailing bytes");
        }
    }
}
