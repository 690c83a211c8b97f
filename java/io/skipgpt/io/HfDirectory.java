package io.skipgpt.io;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.tokenizer.HfTokenizer;
import io.skipgpt.tokenizer.SentencePieceBpe;
import io.skipgpt.tokenizer.Tokenizer;
import io.skipgpt.tokenizer.TokenizerJson;
import io.skipgpt.tensor.Tensor;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * A Hugging Face LLaMA directory: config.json (LlamaForCausalLM), weights in model.safetensors or in shards
 * listed by model.safetensors.index.json, tokenizer.json and tokenizer_config.json. Tensor names are
 * model.embed_tokens, model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm,
 * mlp.{gate,up,down}_proj}, model.norm and lm_head (absent when tied), each ".weight". HF keeps Q and K rows in
 * rotate-half order: reading permutes them to adjacent pairs, writing back (see {@link RopeLayout}).
 */
public final class HfDirectory {
    static final String CONFIG = "config.json";
    static final String SINGLE = "model.safetensors";
    static final String INDEX = "model.safetensors.index.json";
    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().serializeNulls()
            .create();

    private HfDirectory() {}

    static String tensorName(WeightSlot slot, int layer) {
        String l = "model.layers." + layer + ".";
        return switch (slot) {
            case EMBEDDING -> "model.embed_tokens.weight";
            case OUTPUT_NORM -> "model.norm.weight";
            case OUTPUT -> "lm_head.weight";
            case ATTN_NORM -> l + "input_layernorm.weight";
            case WQ -> l + "self_attn.q_proj.weight";
            case WK -> l + "self_attn.k_proj.weight";
            case WV -> l + "self_attn.v_proj.weight";
            case WO -> l + "self_attn.o_proj.weight";
            case FFN_NORM -> l + "post_attention_layernorm.weight";
            case GATE -> l + "mlp.gate_proj.weight";
            case UP -> l + "mlp.up_proj.weight";
            case DOWN -> l + "mlp.down_proj.weight";
        };
    }

    /** Reads a directory; {@code tokenizer}, when not null, replaces the directory's tokenizer.json. */
    static LoadedModel read(Path dir, Tokenizer tokenizer) throws ModelFormatException {
        Path configFile = dir.resolve(CONFIG);
        if (!Files.isRegularFile(configFile)) {
            throw new ModelFormatException(dir, "missing " + CONFIG + ": not a Hugging Face model directory");
        }
        JsonObject json = readJson(configFile);
        List<MappedFile> shards = new ArrayList<>();
        try {
            TensorCatalog tensors = catalog(dir, shards);
            LlamaConfig config = config(configFile, json, tensors);
            Tokenizer tok = tokenizer != null ? tokenizer : tokenizer(dir);
            LlamaWeights w = tensors.readWeights(config, HfDirectory::tensorName, true);
            return new LoadedModel(dir, "Hugging Face", tensors.storedDtype(), config, w, tok);
        } finally {
            shards.forEach(MappedFile::close);
        }
    }

    /** A JSON object file (config.json, adapter_config.json, ...), or a {@link ModelFormatException} naming it. */
    public static JsonObject readJson(Path file) throws ModelFormatException {
        try {
            JsonElement e = JsonParser.parseString(Files.readString(file));
            if (!e.isJsonObject()) throw new ModelFormatException(file, "corrupt JSON: not an object");
            return e.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new ModelFormatException(file, "corrupt JSON: " + e.getMessage(), e);
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read: " + e, e);
        }
    }

    /** The tensors of model.safetensors, or of every shard named by the index (each checked against it). */
    private static TensorCatalog catalog(Path dir, List<MappedFile> shards) throws ModelFormatException {
        Path index = dir.resolve(INDEX);
        TensorCatalog catalog = new TensorCatalog(Files.exists(index) ? index : dir.resolve(SINGLE));
        if (!Files.exists(index)) {
            if (!Files.exists(dir.resolve(SINGLE))) {
                throw new ModelFormatException(dir, "missing weights: no " + SINGLE + " or " + INDEX
                        + (Files.exists(dir.resolve("pytorch_model.bin")) ? " (PyTorch .bin weights are not supported)" : ""));
            }
            MappedFile f = MappedFile.open(dir.resolve(SINGLE));
            shards.add(f);
            for (StoredTensor t : Safetensors.parse(f).tensors()) catalog.add(t);
            return catalog;
        }
        Map<String, List<String>> byShard = new LinkedHashMap<>();
        try {
            JsonObject map = readJson(index).getAsJsonObject("weight_map");
            for (Map.Entry<String, JsonElement> e : map.entrySet()) {
                byShard.computeIfAbsent(e.getValue().getAsString(), k -> new ArrayList<>()).add(e.getKey());
            }
        } catch (RuntimeException e) {
            throw new ModelFormatException(index, "corrupt index: no weight_map of tensor names to files (" + e + ")", e);
        }
        for (Map.Entry<String, List<String>> e : byShard.entrySet()) {
            Path shardPath = dir.resolve(e.getKey());
            if (!shardPath.normalize().startsWith(dir.normalize())) {
                throw new ModelFormatException(index, "shard '" + e.getKey() + "' lies outside the directory");
            }
            MappedFile f = MappedFile.open(shardPath);
            shards.add(f);
            Map<String, StoredTensor> inShard = new LinkedHashMap<>();
            for (StoredTensor t : Safetensors.parse(f).tensors()) inShard.put(t.name(), t);
            for (String name : e.getValue()) {
                StoredTensor t = inShard.get(name);
                if (t == null) {
                    throw new ModelFormatException(shardPath, "missing tensor '" + name + "' (the index places it here)");
                }
                catalog.add(t);
            }
        }
        return catalog;
    }

    private static LlamaConfig config(Path file, JsonObject j, TensorCatalog tensors) throws ModelFormatException {
        Fields f = new Fields(file, j);
        String type = f.string("model_type", "llama");
        if (!type.equals("llama")) throw new ModelFormatException(file, "model_type '" + type + "' is not supported (only llama)");
        if (!f.absent("rope_scaling")) throw new ModelFormatException(file, "rope_scaling is not supported");
        if (f.bool("attention_bias", false) || f.bool("mlp_bias", false)) {
            throw new ModelFormatException(file, "attention_bias / mlp_bias are not supported");
        }
        String act = f.string("hidden_act", "silu");
        if (!act.equals("silu")) throw new ModelFormatException(file, "hidden_act '" + act + "' is not supported (only silu)");
        int dim = f.integer("hidden_size", null);
        int heads = f.integer("num_attention_heads", null);
        if (!f.absent("head_dim") && heads > 0 && f.integer("head_dim", null) * heads != dim) {
            throw new ModelFormatException(file, "head_dim " + f.integer("head_dim", null) + " x "
                    + heads + " heads != hidden_size " + dim + " is not supported");
        }
        String out = tensorName(WeightSlot.OUTPUT, 0), emb = tensorName(WeightSlot.EMBEDDING, 0);
        boolean tied = f.bool("tie_word_embeddings", false) || !tensors.has(out) || tensors.identical(out, emb);
        try {
            return new LlamaConfig(dim, f.integer("intermediate_size", null), f.integer("num_hidden_layers", null),
                    heads, f.integer("num_key_value_heads", heads), f.integer("vocab_size", null),
                    f.integer("max_position_embeddings", 2048), f.real("rope_theta", 10000f),
                    f.real("rms_norm_eps", 1e-6f), tied);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file, e.getMessage(), e);
        }
    }

    private static Tokenizer tokenizer(Path dir) throws ModelFormatException {
        Path json = dir.resolve("tokenizer.json");
        if (!Files.exists(json)) {
            throw new ModelFormatException(dir, "missing tokenizer: no tokenizer.json"
                    + (Files.exists(dir.resolve("tokenizer.model")) ? " (tokenizer.model is not supported)" : "")
                    + " (pass one explicitly)");
        }
        return HfTokenizer.load(json);
    }

    /** Typed config.json fields; a missing required one (fallback null) or a wrong kind names the key. */
    private record Fields(Path file, JsonObject json) {
        boolean absent(String key) {
            return json.get(key) == null || json.get(key).isJsonNull();
        }

        private ModelFormatException wrong(String key, String expected) {
            return new ModelFormatException(file, key + " is " + json.get(key) + ", expected " + expected);
        }

        int integer(String key, Integer fallback) throws ModelFormatException {
            if (absent(key)) {
                if (fallback == null) throw new ModelFormatException(file, "missing " + key);
                return fallback;
            }
            JsonElement e = json.get(key);
            if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) throw wrong(key, "an integer");
            double d = e.getAsDouble();
            if (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) throw wrong(key, "an integer");
            return (int) d;
        }

        float real(String key, float fallback) throws ModelFormatException {
            if (absent(key)) return fallback;
            JsonElement e = json.get(key);
            if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) throw wrong(key, "a number");
            return e.getAsFloat();
        }

        boolean bool(String key, boolean fallback) throws ModelFormatException {
            if (absent(key)) return fallback;
            JsonElement e = json.get(key);
            if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isBoolean()) throw wrong(key, "a boolean");
            return e.getAsBoolean();
        }

        String string(String key, String fallback) throws ModelFormatException {
            if (absent(key)) return fallback;
            JsonElement e = json.get(key);
            if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) throw wrong(key, "a string");
            return e.getAsString();
        }
    }

    /** Writes {@code model} as a Hugging Face directory with a single model.safetensors (F32). */
    public static void write(Path dir, LoadedModel model) throws IOException {
        write(dir, model, Long.MAX_VALUE);
    }

    /**
     * Writes {@code model} as a Hugging Face directory: config.json, generation_config.json, tokenizer.json,
     * tokenizer_config.json and F32 safetensors, split into shards of at most {@code maxShardBytes} of tensor
     * data (a tensor larger than that gets a shard of its own) with an index when there is more than one. The
     * directory appears complete or not at all (files are written into a temporary directory first).
     */
    public static void write(Path dir, LoadedModel model, long maxShardBytes) throws IOException {
        LlamaConfig c = model.config();
        LlamaWeights w = model.weights();
        Tokenizer tok = model.tokenizer();
        if (!(tok instanceof SentencePieceBpe) && !(tok instanceof HfTokenizer)) {
            throw new IllegalArgumentException("cannot write a tokenizer.json for " + tok.describe());
        }
        List<Safetensors.Named> tensors = new ArrayList<>();
        for (WeightSlot.Entry e : WeightSlot.fileOrder(c.nLayers(), w.tied())) {
            Tensor t = e.slot().of(w, e.layer());
            int[] order = e.slot() == WeightSlot.WQ ? RopeLayout.toRotateHalf(t.rows(), c.nHeads())
                    : e.slot() == WeightSlot.WK ? RopeLayout.toRotateHalf(t.rows(), c.nKvHeads()) : null;
            tensors.add(new Safetensors.Named(tensorName(e.slot(), e.layer()), t, order));
        }
        List<List<Safetensors.Named>> shards = new ArrayList<>();
        long shardBytes = 0;
        for (Safetensors.Named t : tensors) {
            long bytes = 4 * t.tensor().size();
            if (shards.isEmpty() || shardBytes > 0 && shardBytes + bytes > maxShardBytes) {
                shards.add(new ArrayList<>());
                shardBytes = 0;
            }
            shards.get(shards.size() - 1).add(t);
            shardBytes += bytes;
        }
        // Weight files of an earlier export in the same directory would confuse readers: they go.
        Predicate<String> staleWeights = name -> name.equals(SINGLE) || name.equals(INDEX)
                || name.matches("model-\\d+-of-\\d+\\.safetensors");
        AtomicFiles.writeDirectory(dir, tmp -> {
            writeJson(tmp.resolve(CONFIG), configJson(c, w, tok));
            JsonObject generation = new JsonObject();
            generation.addProperty("bos_token_id", tok.bos());
            generation.addProperty("eos_token_id", tok.eos());
            writeJson(tmp.resolve("generation_config.json"), generation);
            if (tok instanceof SentencePieceBpe s) {
                TokenizerJson.write(tmp.resolve("tokenizer.json"), s);
            } else {
                AtomicFiles.write(tmp.resolve("tokenizer.json"),
                        ((HfTokenizer) tok).tokenizerJson().getBytes(StandardCharsets.UTF_8));
            }
            String originalConfig = tok instanceof HfTokenizer h ? h.tokenizerConfigJson() : null;
            if (originalConfig != null) {
                AtomicFiles.write(tmp.resolve("tokenizer_config.json"), originalConfig.getBytes(StandardCharsets.UTF_8));
            } else {
                TokenizerJson.writeConfig(tmp.resolve("tokenizer_config.json"), tok, c.contextLength());
            }
            Map<String, String> metadata = Map.of("format", "pt"); // transformers refuses safetensors without it
            if (shards.size() == 1) {
                Safetensors.write(tmp.resolve(SINGLE), shards.get(0), metadata, StorageType.F32);
                return;
            }
            JsonObject weightMap = new JsonObject();
            long total = 0;
            for (int i = 0; i < shards.size(); i++) {
                String name = String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
                Safetensors.write(tmp.resolve(name), shards.get(i), metadata, StorageType.F32);
                for (Safetensors.Named t : shards.get(i)) {
                    weightMap.addProperty(t.name(), name);
                    total += 4 * t.tensor().size();
                }
            }
            JsonObject index = new JsonObject();
            JsonObject meta = new JsonObject();
            meta.addProperty("total_size", total);
            index.add("metadata", meta);
            index.add("weight_map", weightMap);
            writeJson(tmp.resolve(INDEX), index);
        }, staleWeights);
    }

    private static JsonObject configJson(LlamaConfig c, LlamaWeights w, Tokenizer tok) {
        JsonObject j = new JsonObject();
        JsonArray arch = new JsonArray();
        arch.add("LlamaForCausalLM");
        j.add("architectures", arch);
        j.addProperty("model_type", "llama");
        j.addProperty("hidden_size", c.dim());
        j.addProperty("intermediate_size", c.hiddenDim());
        j.addProperty("num_hidden_layers", c.nLayers());
        j.addProperty("num_attention_heads", c.nHeads());
        j.addProperty("num_key_value_heads", c.nKvHeads());
        j.addProperty("vocab_size", c.vocabSize());
        j.addProperty("max_position_embeddings", c.contextLength());
        // Floats as their shortest decimal (1e-5f, not 9.999999747378752e-06), which reads back as the same float.
        j.addProperty("rope_theta", Double.parseDouble(Float.toString(c.ropeTheta())));
        j.addProperty("rms_norm_eps", Double.parseDouble(Float.toString(c.normEps())));
        j.addProperty("tie_word_embeddings", w.tied());
        j.addProperty("hidden_act", "silu");
        j.addProperty("attention_bias", false);
        j.addProperty("mlp_bias", false);
        j.add("rope_scaling", JsonNull.INSTANCE);
        j.addProperty("initializer_range", 0.02);
        j.addProperty("torch_dtype", "float32");
        j.addProperty("bos_token_id", tok.bos());
        j.addProperty("eos_token_id", tok.eos());
        j.addProperty("use_cache", true);
        return j;
    }

    private static void writeJson(Path file, JsonObject json) throws IOException {
        AtomicFiles.write(file, GSON.toJson(json).getBytes(StandardCharsets.UTF_8));
    }
}
