package io.skipgpt.io;

import static io.skipgpt.io.TestModels.assertMessage;
import static io.skipgpt.io.TestModels.assertSameModel;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.model.LlamaConfig;
import io.skipgpt.tensor.Tensor;
import io.skipgpt.tokenizer.Llama2cTokenizer;
import io.skipgpt.tokenizer.SentencePieceBpe;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufTest {
    @TempDir
    Path dir;

    /** A GGUF assembled by hand in the test, so tensors can have any type, shape or bytes. */
    static final class Builder {
        final Map<String, Object> kv = new LinkedHashMap<>();
        final List<Object[]> tensors = new ArrayList<>(); // {name, long[] ggufDims (ne0 first), Integer type, byte[] data}
        String magic = "GGUF";
        int version = 3;

        /** The metadata and F32 tensors of a model, as llama.cpp names them. */
        static Builder of(LoadedModel m) {
            Builder b = new Builder();
            LlamaConfig c = m.config();
            b.kv.put("general.architecture", "llama");
            b.kv.put("llama.context_length", c.contextLength());
            b.kv.put("llama.embedding_length", c.dim());
            b.kv.put("llama.feed_forward_length", c.hiddenDim());
            b.kv.put("llama.block_count", c.nLayers());
            b.kv.put("llama.attention.head_count", c.nHeads());
            b.kv.put("llama.attention.head_count_kv", c.nKvHeads());
            b.kv.put("llama.attention.layer_norm_rms_epsilon", c.normEps());
            SentencePieceBpe t = (SentencePieceBpe) m.tokenizer();
            b.kv.put("tokenizer.ggml.model", "llama");
            b.kv.put("tokenizer.ggml.tokens", t.pieces());
            b.kv.put("tokenizer.ggml.scores", t.scores());
            for (WeightSlot slot : WeightSlot.values()) {
                if (slot == WeightSlot.OUTPUT && m.weights().tied()) continue;
                for (int l = 0; l < (slot.perLayer ? c.nLayers() : 1); l++) {
                    Tensor x = slot.of(m.weights(), l);
                    ByteBuffer data = ByteBuffer.allocate((int) x.size() * 4).order(ByteOrder.LITTLE_ENDIAN);
                    for (float v : x.toFloatArray()) data.putFloat(v);
                    long[] dims = new long[x.rank()];
                    for (int d = 0; d < dims.length; d++) dims[d] = x.dim(x.rank() - 1 - d);
                    b.tensors.add(new Object[] {Gguf.tensorName(slot, l), dims, 0, data.array()});
                }
            }
            return b;
        }

        Object[] tensor(String name) {
            return tensors.stream().filter(t -> t[0].equals(name)).findFirst().orElseThrow();
        }

        Path write(Path file) throws Exception {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            LeOutput out = new LeOutput(bytes);
            out.bytes(magic.getBytes(StandardCharsets.US_ASCII));
            out.i32(version);
            out.i64(tensors.size());
            out.i64(kv.size());
            for (Map.Entry<String, Object> e : kv.entrySet()) {
                out.ggufString(e.getKey());
                Object v = e.getValue();
                if (v instanceof Integer i) {
                    out.i32(4);
                    out.i32(i);
                } else if (v instanceof Float f) {
                    out.i32(6);
                    out.f32(f);
                } else if (v instanceof String s) {
                    out.i32(8);
                    out.ggufString(s);
                } else if (v instanceof String[] a) {
                    out.i32(9);
                    out.i32(8);
                    out.i64(a.length);
                    for (String s : a) out.ggufString(s);
                } else {
                    float[] a = (float[]) v;
                    out.i32(9);
                    out.i32(6);
                    out.i64(a.length);
                    for (float f : a) out.f32(f);
                }
            }
            long offset = 0;
            for (Object[] t : tensors) {
                out.ggufString((String) t[0]);
                long[] dims = (long[]) t[1];
                out.i32(dims.length);
                for (long d : dims) out.i64(d);
                out.i32((Integer) t[2]);
                out.i64(offset);
                offset += (((byte[]) t[3]).length + 31) / 32 * 32;
            }
            out.padTo(32);
            for (Object[] t : tensors) {
                out.bytes((byte[]) t[3]);
                out.padTo(32);
            }
            Files.write(file, bytes.toByteArray());
            return file;
        }
    }

    @Test
    void writtenF32ModelsReadBackBitwise() throws Exception {
        for (boolean tied : new boolean[] {true, false}) {
            try (LoadedModel m = TestModels.random(TestModels.config(tied), 1)) {
                Path file = dir.resolve("m" + tied + ".gguf");
                Gguf.write(file, m, false);
                try (LoadedModel back = ModelLoader.load(file, null)) {
                    assertSameModel(m, back, true);
                    assertEquals("GGUF", back.format());
                    assertEquals("F32", back.storedDtype());
                    assertArrayEquals(((SentencePieceBpe) m.tokenizer()).pieces(),
                            ((SentencePieceBpe) back.tokenizer()).pieces());
                }
            }
        }
    }

    @Test
    void f16WritingRoundsMatricesAndKeepsNormsF32() throws Exception {
        try (LoadedModel m = TestModels.random(TestModels.config(false), 2)) {
            Path file = dir.resolve("m16.gguf");
            Gguf.write(file, m, true);
            try (LoadedModel back = ModelLoader.load(file, null)) {
                assertEquals("F32+F16", back.storedDtype());
                float[] wq = m.weights().layers().get(1).wq().toFloatArray();
                float[] got = back.weights().layers().get(1).wq().toFloatArray();
                for (int i = 0; i < wq.length; i++) assertEquals(StorageType.halfToFloat(StorageType.floatToHalf(wq[i]) & 0xFFFF), got[i]);
                assertArrayEquals(m.weights().outputNorm().toFloatArray(), back.weights().outputNorm().toFloatArray());
            }
        }
    }

    @Test
    void quantisedAndHalfTensorsAreDequantised() throws Exception {
        // dim 64 so rows are whole Q8_0 blocks of 32.
        LlamaConfig c = new LlamaConfig(64, 96, 1, 4, 2, 300, 32, 10000f, 1e-5f, true);
        try (LoadedModel m = TestModels.random(c, 3)) {
            Builder b = Builder.of(m);
            // Q8_0 gate [96, 64]: per block an f16 scale (0.5 = 0x3800 or -0.25 = 0xB400), then 32 int8 quants.
            ByteBuffer q8 = ByteBuffer.allocate(96 * 2 * 34).order(ByteOrder.LITTLE_ENDIAN);
            for (int block = 0; block < 96 * 2; block++) {
                q8.putShort((short) (block % 2 == 0 ? 0x3800 : 0xB400));
                for (int j = 0; j < 32; j++) q8.put((byte) ((block * 7 + j * 37) % 256 - 128));
            }
            b.tensor("blk.0.ffn_gate.weight")[2] = 8;
            b.tensor("blk.0.ffn_gate.weight")[3] = q8.array();
            // F16 norm [64] and BF16 norm [64]: known bit patterns.
            short[] half = {0x3C00, (short) 0xC000, 0x7BFF, 0x0001, 0x3555, (short) 0x8000};
            float[] halfValues = {1f, -2f, 65504f, 0x1p-24f, 0.333251953125f, -0f};
            short[] bf = {0x3F80, (short) 0xC049, 0x4049, 0x0000, (short) 0xBF00, 0x4780};
            float[] bfValues = {1f, -3.140625f, 3.140625f, 0f, -0.5f, 65536f};
            ByteBuffer h = ByteBuffer.allocate(128).order(ByteOrder.LITTLE_ENDIAN);
            ByteBuffer f = ByteBuffer.allocate(128).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < 64; i++) {
                h.putShort(half[i % 6]);
                f.putShort(bf[i % 6]);
            }
            b.tensor("blk.0.attn_norm.weight")[2] = 1;
            b.tensor("blk.0.attn_norm.weight")[3] = h.array();
            b.tensor("blk.0.ffn_norm.weight")[2] = 30;
            b.tensor("blk.0.ffn_norm.weight")[3] = f.array();
            try (LoadedModel back = ModelLoader.load(b.write(dir.resolve("q.gguf")), null)) {
                assertEquals("F32+F16+BF16+Q8_0", back.storedDtype());
                float[] gate = back.weights().layers().get(0).wGate().toFloatArray();
                assertEquals(-64f, gate[0]); // block 0, quant -128, scale 0.5
                assertEquals(-45.5f, gate[1]); // quant 37 - 128 = -91
                assertEquals(-0.25f * ((7 + 0) % 256 - 128), gate[32]); // block 1: scale -0.25
                assertEquals(30.25f, gate[32]);
                for (int i = 0; i < gate.length; i++) {
                    int block = i / 32, j = i % 32;
                    assertEquals((block % 2 == 0 ? 0.5f : -0.25f) * ((block * 7 + j * 37) % 256 - 128), gate[i]);
                }
                float[] attnNorm = back.weights().layers().get(0).attnNorm().toFloatArray();
                float[] ffnNorm = back.weights().layers().get(0).ffnNorm().toFloatArray();
                for (int i = 0; i < 64; i++) {
                    assertEquals(halfValues[i % 6], attnNorm[i], "f16 " + i);
                    assertEquals(bfValues[i % 6], ffnNorm[i], "bf16 " + i);
                }
                assertSameWeightsExcept(m, back);
            }
        }
    }

    private static void assertSameWeightsExcept(LoadedModel m, LoadedModel back) {
        assertArrayEquals(m.weights().layers().get(0).wq().toFloatArray(), back.weights().layers().get(0).wq().toFloatArray());
        assertArrayEquals(m.weights().tokenEmbedding().toFloatArray(), back.weights().tokenEmbedding().toFloatArray());
    }

    @Test
    void badFilesNameTheFileAndTheProblem() throws Exception {
        try (LoadedModel m = TestModels.random(TestModels.config(true), 4)) {
            Path good = dir.resolve("good.gguf");
            Gguf.write(good, m, false);
            byte[] all = Files.readAllBytes(good);

            Path cut = dir.resolve("cut.gguf");
            Files.write(cut, Arrays.copyOf(all, all.length / 2));
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(cut, null)), cut,
                    "truncated", "needs bytes", "but the file has " + all.length / 2);
            Path header = dir.resolve("header.gguf");
            Files.write(header, Arrays.copyOf(all, 100));
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(header, null)), header,
                    "truncated");

            Path magic = dir.resolve("magic.gguf");
            Builder b = Builder.of(m);
            b.magic = "GGML";
            b.write(magic);
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(magic, null)), magic,
                    "bad magic", "\"GGUF\"", "0x47474D4C");

            Path v1 = dir.resolve("v1.gguf");
            b = Builder.of(m);
            b.version = 1;
            b.write(v1);
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(v1, null)), v1,
                    "GGUF version 1 is not supported");

            Path unknown = dir.resolve("unknown.gguf");
            b = Builder.of(m);
            b.tensor("blk.1.attn_q.weight")[2] = 99;
            b.write(unknown);
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(unknown, null)), unknown,
                    "'blk.1.attn_q.weight'", "unknown type 99");

            Path q4k = dir.resolve("q4k.gguf");
            b = Builder.of(m);
            b.tensor("blk.1.attn_q.weight")[2] = 12;
            b.write(q4k);
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(q4k, null)), q4k,
                    "type Q4_K (12), which is not supported");

            Path missing = dir.resolve("missing.gguf");
            b = Builder.of(m);
            b.tensors.remove(b.tensor("blk.2.ffn_down.weight"));
            b.write(missing);
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(missing, null)), missing,
                    "missing tensor 'blk.2.ffn_down.weight'");

            Path shape = dir.resolve("shape.gguf");
            b = Builder.of(m);
            b.tensor("blk.0.attn_k.weight")[1] = new long[] {16, 48}; // [out, in] given where [in, out] belongs
            b.write(shape);
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(shape, null)), shape,
                    "tensor 'blk.0.attn_k.weight' has shape [48, 16], expected [16, 48]");

            Path meta = dir.resolve("meta.gguf");
            b = Builder.of(m);
            b.kv.remove("llama.block_count");
            b.write(meta);
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(meta, null)), meta,
                    "missing metadata key llama.block_count");

            Path arch = dir.resolve("arch.gguf");
            b = Builder.of(m);
            b.kv.put("general.architecture", "qwen2");
            b.write(arch);
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(arch, null)), arch,
                    "architecture 'qwen2' is not supported");

            Path noTok = dir.resolve("notok.gguf");
            b = Builder.of(m);
            b.kv.remove("tokenizer.ggml.tokens");
            b.write(noTok);
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(noTok, null)), noTok,
                    "missing tokenizer");
        }
    }

    @Test
    void stories260KMatchesItsModelCard() throws Exception {
        Path file = TestData.stories260KGguf();
        try (LoadedModel m = ModelLoader.load(file, null)) {
            LlamaConfig c = m.config();
            // The GGUF's context_length of 2048 is a converter default (the model trained at 512).
            assertEquals(new LlamaConfig(64, 172, 5, 8, 4, 512, 2048, 10000f, 1e-5f, true), c);
            assertEquals(260_032, c.parameterCount());
            assertEquals("F32", m.storedDtype());
            // Its output.weight is a stored copy of the embedding: recognised and tied.
            assertTrue(m.weights().tied());
            assertArrayEquals(new int[] {403, 407, 261, 378}, m.tokenizer().encode("Once upon a time"));
            SentencePieceBpe fromGguf = (SentencePieceBpe) m.tokenizer();
            SentencePieceBpe fromBin = Llama2cTokenizer.read(TestData.tok512());
            assertArrayEquals(fromBin.pieces(), fromGguf.pieces());
            assertArrayEquals(fromBin.scores(), fromGguf.scores());
            assertArrayEquals(new int[] {403, 407, 261, 378}, ModelLoader.loadTokenizer(file).encode("Once upon a time"));
        }
    }
}
