package io.skipgpt.io;

import static io.skipgpt.io.TestModels.assertMessage;
import static io.skipgpt.io.TestModels.assertSameModel;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.tensor.Tensor;
import io.skipgpt.tokenizer.HfTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HfDirectoryTest {
    @TempDir
    Path dir;

    private static JsonObject json(Path file) throws Exception {
        return JsonParser.parseString(Files.readString(file)).getAsJsonObject();
    }

    @Test
    void writtenDirectoriesReadBackBitwise() throws Exception {
        for (boolean tied : new boolean[] {true, false}) {
            try (LoadedModel m = TestModels.random(TestModels.config(tied), 30)) {
                Path out = dir.resolve("hf" + tied);
                HfDirectory.write(out, m);
                try (Stream<Path> files = Files.list(out)) {
                    assertEquals(List.of("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                            "tokenizer_config.json"), files.map(p -> p.getFileName().toString()).sorted().toList());
                }
                JsonObject config = json(out.resolve("config.json"));
                assertEquals("LlamaForCausalLM", config.getAsJsonArray("architectures").get(0).getAsString());
                assertEquals("float32", config.get("torch_dtype").getAsString());
                assertEquals(tied, config.get("tie_word_embeddings").getAsBoolean());
                assertEquals(1e-5f, config.get("rms_norm_eps").getAsFloat());
                assertEquals("pt", Safetensors.metadata(out.resolve("model.safetensors")).get("format"));
                try (LoadedModel back = ModelLoader.load(out, null)) {
                    assertSameModel(m, back, true);
                    assertEquals("Hugging Face", back.format());
                    assertEquals("F32", back.storedDtype());
                    assertEquals(m.tokenizer().vocabSize(), back.tokenizer().vocabSize());
                    assertArrayEquals(m.tokenizer().encode("a bee abc"), back.tokenizer().encode("a bee abc"));
                }
            }
        }
    }

    @Test
    void shardedDirectoriesReadBackBitwise() throws Exception {
        try (LoadedModel m = TestModels.random(TestModels.config(false), 31)) {
            Path out = dir.resolve("sharded");
            HfDirectory.write(out, m, 40_000);
            JsonObject index = json(out.resolve(HfDirectory.INDEX));
            JsonObject weightMap = index.getAsJsonObject("weight_map");
            assertEquals(2 + 3 * 9 + 1, weightMap.size());
            long shards = weightMap.entrySet().stream().map(e -> e.getValue().getAsString()).distinct().count();
            assertTrue(shards > 3, "shards: " + shards);
            assertTrue(Files.exists(out.resolve(String.format("model-00001-of-%05d.safetensors", shards))));
            assertFalse(Files.exists(out.resolve(HfDirectory.SINGLE)));
            try (LoadedModel back = ModelLoader.load(out, null)) {
                assertSameModel(m, back, true);
            }
        }
    }

    @Test
    void qAndKAreStoredRotateHalfAndReadBackAdjacent() throws Exception {
        try (LoadedModel m = TestModels.random(TestModels.config(true), 32)) {
            Path out = dir.resolve("perm");
            HfDirectory.write(out, m);
            LlamaConfig c = m.config();
            // Direction of writing: the stored q_proj/k_proj are HF's documented permute of our adjacent rows.
            Map<String, Tensor> stored = Safetensors.readAll(out.resolve(HfDirectory.SINGLE));
            float[] wq = m.weights().layers().get(1).wq().toFloatArray();
            float[] wk = m.weights().layers().get(1).wk().toFloatArray();
            assertArrayEquals(RopeLayoutTest.hfPermute(wq, c.nHeads(), c.dim(), c.dim()),
                    stored.get("model.layers.1.self_attn.q_proj.weight").toFloatArray());
            assertArrayEquals(RopeLayoutTest.hfPermute(wk, c.nKvHeads(), c.kvDim(), c.dim()),
                    stored.get("model.layers.1.self_attn.k_proj.weight").toFloatArray());
            assertArrayEquals(m.weights().layers().get(1).wv().toFloatArray(),
                    stored.get("model.layers.1.self_attn.v_proj.weight").toFloatArray());

            // Direction of reading: an HF checkpoint made by the documented permute alone (no writer of ours
            // involved in the rows) reads back as the original adjacent-pair weights.
            Map<String, Tensor> handMade = new LinkedHashMap<>(stored);
            for (int l = 0; l < c.nLayers(); l++) {
                float[] q = m.weights().layers().get(l).wq().toFloatArray();
                float[] k = m.weights().layers().get(l).wk().toFloatArray();
                handMade.put("model.layers." + l + ".self_attn.q_proj.weight",
                        Tensor.of(RopeLayoutTest.hfPermute(q, c.nHeads(), c.dim(), c.dim()), c.dim(), c.dim()));
                handMade.put("model.layers." + l + ".self_attn.k_proj.weight",
                        Tensor.of(RopeLayoutTest.hfPermute(k, c.nKvHeads(), c.kvDim(), c.dim()), c.kvDim(), c.dim()));
            }
            Safetensors.write(out.resolve(HfDirectory.SINGLE), handMade, Map.of("format", "pt"));
            try (LoadedModel back = ModelLoader.load(out, null)) {
                assertSameModel(m, back, true);
            }
            stored.values().forEach(Tensor::close);
            handMade.values().stream().filter(t -> !stored.containsValue(t)).forEach(Tensor::close);
        }
    }

    @Test
    void stories260KConvertsFromGgufToHfExactly() throws Exception {
        try (LoadedModel g = ModelLoader.load(TestData.stories260KGguf(), null)) {
            Path out = dir.resolve("stories");
            HfDirectory.write(out, g);
            try (LoadedModel h = ModelLoader.load(out, null)) {
                assertSameModel(g, h, true);
                assertTrue(h.tokenizer() instanceof HfTokenizer);
                assertArrayEquals(new int[] {403, 407, 261, 378}, h.tokenizer().encode("Once upon a time"));
                // HF -> HF keeps the tokenizer files as they were.
                Path again = dir.resolve("again");
                HfDirectory.write(again, h);
                assertEquals(Files.readString(out.resolve("tokenizer.json")), Files.readString(again.resolve("tokenizer.json")));
                assertEquals(Files.readString(out.resolve("tokenizer_config.json")),
                        Files.readString(again.resolve("tokenizer_config.json")));
            }
        }
    }

    @Test
    void writingIntoAnExistingDirectoryReplacesItsFiles() throws Exception {
        Path out = dir.resolve("existing");
        try (LoadedModel a = TestModels.random(TestModels.config(true), 33);
             LoadedModel b = TestModels.random(TestModels.config(true), 34)) {
            HfDirectory.write(out, a, 40_000); // sharded first: its index and shards must not survive
            Files.writeString(out.resolve("README.md"), "kept");
            HfDirectory.write(out, b);
            try (Stream<Path> files = Files.list(out)) {
                assertEquals(List.of("README.md", "config.json", "generation_config.json", "model.safetensors",
                        "tokenizer.json", "tokenizer_config.json"), files.map(p -> p.getFileName().toString()).sorted().toList());
            }
            try (LoadedModel back = ModelLoader.load(out, null)) {
                assertSameModel(b, back, true);
            }
            try (Stream<Path> files = Files.list(dir)) {
                assertEquals(List.of("existing"), files.map(p -> p.getFileName().toString()).toList()); // no temp left
            }
        }
    }

    @Test
    void badDirectoriesNameTheFileAndTheProblem() throws Exception {
        try (LoadedModel m = TestModels.random(TestModels.config(true), 35)) {
            Path out = dir.resolve("bad");
            HfDirectory.write(out, m);
            Path config = out.resolve("config.json");
            String good = Files.readString(config);

            Files.writeString(config, good.substring(0, good.length() / 2));
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(out, null)), config,
                    "corrupt JSON");
            Files.writeString(config, good.replace("\"hidden_size\": 48,", ""));
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(out, null)), config,
                    "missing hidden_size");
            Files.writeString(config, good.replace("\"hidden_size\": 48", "\"hidden_size\": \"48\""));
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(out, null)), config,
                    "hidden_size is \"48\", expected an integer");
            Files.writeString(config, good.replace("\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"llama3\"}"));
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(out, null)), config,
                    "rope_scaling is not supported");
            Files.writeString(config, good.replace("\"num_attention_heads\": 6", "\"num_attention_heads\": 5"));
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(out, null)), config,
                    "invalid model config");
            Files.writeString(config, good.replace("\"intermediate_size\": 80", "\"intermediate_size\": 81"));
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(out, null)),
                    out.resolve(HfDirectory.SINGLE), "tensor 'model.layers.0.mlp.gate_proj.weight' has shape [80, 48], expected [81, 48]");
            Files.writeString(config, good);

            Path weights = out.resolve(HfDirectory.SINGLE);
            byte[] all = Files.readAllBytes(weights);
            Files.write(weights, Arrays.copyOf(all, all.length - 100));
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(out, null)), weights,
                    "truncated");
            Files.write(weights, all);

            Files.delete(out.resolve("tokenizer.json"));
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(out, null)), out,
                    "missing tokenizer: no tokenizer.json");
            Files.delete(config);
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(out, null)), out,
                    "missing config.json");
        }
    }

    @Test
    void shardsMustHoldWhatTheIndexSays() throws Exception {
        try (LoadedModel m = TestModels.random(TestModels.config(true), 36)) {
            Path out = dir.resolve("idx");
            HfDirectory.write(out, m, 40_000);
            Path index = out.resolve(HfDirectory.INDEX);
            String text = Files.readString(index);
            // Point the embedding (alone in shard 1) at shard 2, which does not hold it.
            JsonObject moved = json(index);
            String shard2 = String.format("model-00002-of-%05d.safetensors",
                    moved.getAsJsonObject("weight_map").entrySet().stream().map(e -> e.getValue().getAsString()).distinct().count());
            moved.getAsJsonObject("weight_map").addProperty("model.embed_tokens.weight", shard2);
            Files.writeString(index, moved.toString());
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(out, null)), out.resolve(shard2),
                    "missing tensor 'model.embed_tokens.weight' (the index places it here)");
            JsonObject dropped = JsonParser.parseString(text).getAsJsonObject();
            dropped.getAsJsonObject("weight_map").remove("model.norm.weight");
            Files.writeString(index, dropped.toString());
            assertMessage(assertThrows(ModelFormatException.class, () -> ModelLoader.load(out, null)), index,
                    "missing tensor 'model.norm.weight'");
        }
    }
}
