package io.skipgpt.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.skipgpt.io.HfDirectory;
import io.skipgpt.io.LoadedModel;
import io.skipgpt.io.ModelFormatException;
import io.skipgpt.io.Safetensors;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.Projection;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tensor.Tensor;
import io.skipgpt.tokenizer.SentencePieceBpe;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** PEFT adapter directories: exact round trips, PEFT's names and shapes, and the same function on the HF side. */
class PeftDirectoryTest {
    /** dim 48, 6 heads of 8 over 2 KV heads (GQA), hidden 80, 2 layers, vocab 300. */
    static final LlamaConfig CONFIG = new LlamaConfig(48, 80, 2, 6, 2, 300, 64, 10000f, 1e-5f, false);
    static final LoraConfig ALL = new LoraConfig(List.of(Projection.values()), 4, 12, 0.05);

    @Test
    void roundTripIsExactAndTheConfigIsPefts(@TempDir Path dir) throws Exception {
        try (LoraAdapter lora = LoraAdapterTest.random(CONFIG, ALL, 1)) {
            PeftDirectory.write(dir, lora, "models/base");
            try (LoraAdapter back = PeftDirectory.read(dir, CONFIG)) {
                assertEquals(ALL, back.config());
                Map<String, Tensor> got = back.tensors();
                lora.tensors().forEach((name, t) -> assertArrayEquals(t.toFloatArray(), got.get(name).toFloatArray(), name));
            }
            JsonObject j = JsonParser.parseString(Files.readString(dir.resolve(PeftDirectory.CONFIG))).getAsJsonObject();
            assertEquals("LORA", j.get("peft_type").getAsString());
            assertEquals("CAUSAL_LM", j.get("task_type").getAsString());
            assertEquals("models/base", j.get("base_model_name_or_path").getAsString());
            assertEquals("4", j.get("r").toString());
            assertEquals("12", j.get("lora_alpha").toString());
            assertEquals(0.05, j.get("lora_dropout").getAsDouble());
            assertEquals("[\"q_proj\",\"k_proj\",\"v_proj\",\"o_proj\",\"gate_proj\",\"up_proj\",\"down_proj\"]",
                    j.get("target_modules").toString());
        }
    }

    @Test
    void tensorsHavePeftsNamesAndShapes(@TempDir Path dir) throws Exception {
        try (LoraAdapter lora = LoraAdapter.initialise(CONFIG, LoraConfig.DEFAULT, 2)) {
            PeftDirectory.write(dir, lora, "base");
            Map<String, Tensor> stored = Safetensors.readAll(dir.resolve(PeftDirectory.WEIGHTS));
            try {
                List<String> want = new ArrayList<>();
                for (int l = 0; l < 2; l++) {
                    for (String m : List.of("self_attn.q_proj", "self_attn.v_proj", "mlp.gate_proj")) {
                        want.add("base_model.model.model.layers." + l + "." + m + ".lora_A.weight");
                        want.add("base_model.model.model.layers." + l + "." + m + ".lora_B.weight");
                    }
                }
                assertEquals(want, new ArrayList<>(stored.keySet()));
                assertArrayEquals(new int[] {16, 48}, stored.get("base_model.model.model.layers.1.mlp.gate_proj.lora_A.weight").shape());
                assertArrayEquals(new int[] {80, 16}, stored.get("base_model.model.model.layers.1.mlp.gate_proj.lora_B.weight").shape());
                assertArrayEquals(new int[] {16, 16}, stored.get("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight").shape());
            } finally {
                stored.values().forEach(Tensor::close);
            }
        }
    }

    /**
     * What a Hugging Face tool does with the two directories — load the converted base model, apply the PEFT adapter
     * (W + scale·B·A, computed here from the files) — gives this project's merged model, converted: q and k B rows
     * leave in rotate-half order exactly as the base weights do.
     */
    @Test
    void hfSideApplyingThePeftAdapterEqualsMergeThenConvert(@TempDir Path dir) throws Exception {
        try (Backend b = new CpuBackend(); LoraAdapter lora = LoraAdapterTest.random(CONFIG, ALL, 3);
                LoadedModel base = model(RandomWeights.create(CONFIG, 4)); LoadedModel merged = model(RandomWeights.create(CONFIG, 4))) {
            lora.mergeInto(merged.weights(), b);
            HfDirectory.write(dir.resolve("base"), base);
            HfDirectory.write(dir.resolve("merged"), merged);
            PeftDirectory.write(dir.resolve("adapter"), lora, dir.resolve("base").toString());
            Map<String, Tensor> hfBase = Safetensors.readAll(dir.resolve("base/model.safetensors"));
            Map<String, Tensor> hfMerged = Safetensors.readAll(dir.resolve("merged/model.safetensors"));
            Map<String, Tensor> peft = Safetensors.readAll(dir.resolve("adapter").resolve(PeftDirectory.WEIGHTS));
            try {
                double scale = ALL.alpha() / ALL.rank(), worst = 0;
                for (int l = 0; l < CONFIG.nLayers(); l++) {
                    for (Projection p : Projection.values()) {
                        String module = (p.ordinal() < 4 ? "self_attn." : "mlp.") + p.shortName() + "_proj";
                        String prefix = "base_model.model.model.layers." + l + "." + module;
                        float[] w = hfBase.get("model.layers." + l + "." + module + ".weight").toFloatArray();
                        float[] want = hfMerged.get("model.layers." + l + "." + module + ".weight").toFloatArray();
                        float[] a = peft.get(prefix + ".lora_A.weight").toFloatArray();
                        float[] bm = peft.get(prefix + ".lora_B.weight").toFloatArray();
                        int in = p.inDim(CONFIG), out = p.outDim(CONFIG), r = ALL.rank();
                        for (int i = 0; i < out; i++) {
                            for (int j = 0; j < in; j++) {
                                double delta = 0;
                                for (int t = 0; t < r; t++) delta += (double) bm[i * r + t] * a[t * in + j];
                                double err = Math.abs(w[i * in + j] + scale * delta - want[i * in + j]);
                                assertTrue(err < 1e-5, "layer " + l + " " + module + " [" + i + ", " + j + "]: off by " + err);
                                worst = Math.max(worst, err);
                            }
                        }
                    }
                }
                System.out.printf("PEFT adapter applied to the converted model vs converted merged model: max err %.2e%n", worst);
            } finally {
                for (Map<String, Tensor> m : List.of(hfBase, hfMerged, peft)) m.values().forEach(Tensor::close);
            }
        }
    }

    @Test
    void unsupportedOrDamagedAdaptersAreRefusedNamingTheFile(@TempDir Path dir) throws Exception {
        try (LoraAdapter lora = LoraAdapter.initialise(CONFIG, LoraConfig.DEFAULT, 2)) {
            PeftDirectory.write(dir, lora, "base");
        }
        Path config = dir.resolve(PeftDirectory.CONFIG);
        String good = Files.readString(config);
        refused(dir.resolve("nowhere"), "missing adapter_config.json");
        Files.writeString(config, good.replace("\"use_rslora\": false", "\"use_rslora\": true"));
        refused(dir, config + ": use_rslora = true: rsLoRA");
        Files.writeString(config, good.replace("\"LORA\"", "\"IA3\""));
        refused(dir, config + ": peft_type is IA3, only LORA is supported");
        Files.writeString(config, good.replace("\"v_proj\"", "\"lm_head\""));
        refused(dir, "target module 'lm_head' is not a LLaMA projection");
        Files.writeString(config, good.replace("\"r\": 16", "\"r\": 8"));
        refused(dir, dir.resolve(PeftDirectory.WEIGHTS) + ": tensor base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
                + " has shape [16, 48], this model needs [8, 48]");
        Files.writeString(config, good.replace("\"v_proj\",", ""));
        refused(dir, "tensor base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight has no place");
        Files.writeString(config, good);
        LlamaConfig deeper = new LlamaConfig(48, 80, 3, 6, 2, 300, 64, 10000f, 1e-5f, false);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> PeftDirectory.read(dir, deeper));
        assertTrue(e.getMessage().contains("missing tensor base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight"),
                e.getMessage());
    }

    private static void refused(Path dir, String fragment) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> PeftDirectory.read(dir, CONFIG).close());
        assertTrue(e.getMessage().contains(fragment), e.getMessage());
    }

    /** A loaded model around weights, with a small SentencePiece vocabulary (the HF writer needs a tokenizer). */
    private static LoadedModel model(LlamaWeights w) {
        List<String> pieces = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        for (int b = 0; b < 256; b++) pieces.add(String.format("<0x%02X>", b));
        for (int i = 0; pieces.size() < CONFIG.vocabSize(); i++) pieces.add("▁" + (char) ('a' + i % 26) + (char) ('a' + i / 26));
        float[] scores = new float[pieces.size()];
        for (int i = 259; i < scores.length; i++) scores[i] = -(i - 259);
        return new LoadedModel(Path.of("random"), "test", "F32", CONFIG, w,
                new SentencePieceBpe(pieces.toArray(String[]::new), scores, 1, 2));
    }
}
