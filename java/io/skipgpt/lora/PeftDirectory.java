package io.skipgpt.lora;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import io.skipgpt.io.AtomicFiles;
import io.skipgpt.io.HfDirectory;
import io.skipgpt.io.ModelFormatException;
import io.skipgpt.io.RopeLayout;
import io.skipgpt.io.Safetensors;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.Projection;
import io.skipgpt.tensor.Tensor;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A LoRA adapter as a Hugging Face PEFT directory: {@value #CONFIG} (peft_type LORA, r, lora_alpha, lora_dropout,
 * target_modules by HF module name, base_model_name_or_path, task_type CAUSAL_LM) and {@value #WEIGHTS} with
 * {@code base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight} [r, in] and {@code ...lora_B.weight}
 * [out, r] (mlp.gate_proj etc.), so PEFT loads it onto the Hugging Face model this project's {@code convert}
 * writes. HF keeps Q and K rows in rotate-half order: B of q_proj and k_proj is permuted on the way out and back
 * on the way in exactly as the base weights are ({@link RopeLayout}), so the adapter computes the same function on
 * both sides.
 */
public final class PeftDirectory {
    public static final String CONFIG = "adapter_config.json";
    public static final String WEIGHTS = "adapter_model.safetensors";

    private PeftDirectory() {}

    /** The HF module name of a projection: q_proj, ..., gate_proj, up_proj, down_proj. */
    static String hfName(Projection p) {
        return p.shortName() + "_proj";
    }

    /** The PEFT tensor name of A ({@code ab} "A") or B ("B") of a projection at a layer. */
    static String tensorName(int layer, Projection p, String ab) {
        String block = switch (p) {
            case Q, K, V, O -> "self_attn.";
            case GATE, UP, DOWN -> "mlp.";
        };
        return "base_model.model.model.layers." + layer + "." + block + hfName(p) + ".lora_" + ab + ".weight";
    }

    /** Writes the adapter into {@code dir} (created if needed); each file appears complete or not at all. */
    public static void write(Path dir, LoraAdapter adapter, String baseModel) throws IOException {
        LlamaConfig m = adapter.model();
        LoraConfig c = adapter.config();
        List<Safetensors.Named> tensors = new ArrayList<>();
        for (int l = 0; l < m.nLayers(); l++) {
            for (Projection p : c.targets()) {
                tensors.add(new Safetensors.Named(tensorName(l, p, "A"), adapter.a(l, p), null));
                // B's rows are q or k rows: written in the rotate-half order of the Hugging Face model
                tensors.add(new Safetensors.Named(tensorName(l, p, "B"), adapter.b(l, p), ropeOrder(p, m, true)));
            }
        }
        Files.createDirectories(dir);
        Safetensors.write(dir.resolve(WEIGHTS), tensors, Map.of("format", "pt"));
        AtomicFiles.write(dir.resolve(CONFIG), new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().serializeNulls()
                .create().toJson(configJson(c, baseModel)).getBytes(StandardCharsets.UTF_8));
    }

    /** PEFT's LoraConfig fields, with the values that mean "plain LoRA" where this project has no choice. */
    private static JsonObject configJson(LoraConfig c, String baseModel) {
        JsonObject j = new JsonObject();
        j.addProperty("peft_type", "LORA");
        j.addProperty("task_type", "CAUSAL_LM");
        j.addProperty("base_model_name_or_path", baseModel);
        j.addProperty("r", c.rank());
        // An integral alpha as an integer, as PEFT writes it (its field is an int).
        if (c.alpha() == Math.rint(c.alpha())) j.addProperty("lora_alpha", (long) c.alpha());
        else j.addProperty("lora_alpha", c.alpha());
        j.addProperty("lora_dropout", c.dropout());
        JsonArray targets = new JsonArray();
        for (Projection p : c.targets()) targets.add(hfName(p));
        j.add("target_modules", targets);
        j.addProperty("bias", "none");
        j.addProperty("fan_in_fan_out", false);
        j.addProperty("use_rslora", false);
        j.addProperty("use_dora", false);
        j.addProperty("init_lora_weights", true);
        j.addProperty("inference_mode", true);
        j.add("modules_to_save", JsonNull.INSTANCE);
        j.add("layers_to_transform", JsonNull.INSTANCE);
        j.add("rank_pattern", new JsonObject());
        j.add("alpha_pattern", new JsonObject());
        return j;
    }

    /**
     * Reads an adapter for a model of shape {@code model}. Every target of every layer must be there with the
     * model's shapes; PEFT features this project does not implement (rsLoRA, DoRA, biases, per-layer ranks,
     * a subset of layers, extra trained modules) are refused with the file and the field named.
     */
    public static LoraAdapter read(Path dir, LlamaConfig model) throws ModelFormatException {
        Path configFile = dir.resolve(CONFIG), weights = dir.resolve(WEIGHTS);
        if (!Files.isRegularFile(configFile)) {
            throw new ModelFormatException(dir, "missing " + CONFIG + ": not a PEFT adapter directory");
        }
        if (!Files.isRegularFile(weights)) {
            throw new ModelFormatException(dir, "missing " + WEIGHTS
                    + (Files.exists(dir.resolve("adapter_model.bin")) ? " (PyTorch .bin adapters are not supported)" : ""));
        }
        LoraConfig config = readConfig(configFile);
        Map<String, Tensor> tensors = Safetensors.readAll(weights);
        LoraAdapter adapter = LoraAdapter.zeros(model, config);
        try {
            Set<String> used = new HashSet<>();
            for (int l = 0; l < model.nLayers(); l++) {
                for (Projection p : config.targets()) {
                    copy(weights, tensors, tensorName(l, p, "A"), adapter.a(l, p), null, used);
                    copy(weights, tensors, tensorName(l, p, "B"), adapter.b(l, p), ropeOrder(p, model, false), used);
                }
            }
            for (String name : tensors.keySet()) {
                if (!used.contains(name)) {
                    throw new ModelFormatException(weights, "tensor " + name + " has no place in a rank-" + config.rank()
                            + " adapter of " + config.targetList() + " on this " + model.nLayers() + "-layer model");
                }
            }
            return adapter;
        } catch (ModelFormatException | RuntimeException e) {
            adapter.close();
            throw e;
        } finally {
            tensors.values().forEach(Tensor::close);
        }
    }

    private static LoraConfig readConfig(Path file) throws ModelFormatException {
        JsonObject j = HfDirectory.readJson(file);
        try {
            String type = j.has("peft_type") ? j.get("peft_type").getAsString() : null;
            if (!"LORA".equals(type)) throw new ModelFormatException(file, "peft_type is " + type + ", only LORA is supported");
            refuse(file, j, "use_rslora", true, "rsLoRA (scale alpha/sqrt(r))");
            refuse(file, j, "use_dora", true, "DoRA");
            refuse(file, j, "fan_in_fan_out", true, "fan_in_fan_out (transposed weights)");
            if (j.has("bias") && !j.get("bias").getAsString().equals("none")) {
                throw new ModelFormatException(file, "bias '" + j.get("bias").getAsString() + "' is not supported (only none)");
            }
            for (String key : List.of("rank_pattern", "alpha_pattern")) {
                if (j.has(key) && !j.get(key).isJsonNull() && j.getAsJsonObject(key).size() > 0) {
                    throw new ModelFormatException(file, key + " is not supported (one rank and alpha for every module)");
                }
            }
            for (String key : List.of("layers_to_transform", "modules_to_save")) {
                if (j.has(key) && !j.get(key).isJsonNull()) {
                    throw new ModelFormatException(file, key + " is not supported (adapters on every layer, nothing else trained)");
                }
            }
            JsonElement modules = j.get("target_modules");
            if (modules == null || !modules.isJsonArray()) {
                throw new ModelFormatException(file, "target_modules must be a list of module names such as [\"q_proj\", \"v_proj\"]"
                        + " (a regular expression is not supported)");
            }
            List<Projection> targets = new ArrayList<>();
            for (JsonElement m : modules.getAsJsonArray()) {
                String name = m.getAsString();
                Projection p = Arrays.stream(Projection.values()).filter(x -> hfName(x).equals(name)).findFirst()
                        .orElseThrow(() -> new ModelFormatException(file, "target module '" + name
                                + "' is not a LLaMA projection (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)"));
                targets.add(p);
            }
            // PEFT applies its targets in module order; keep the projections in the model's order.
            targets.sort(null);
            double dropout = j.has("lora_dropout") ? j.get("lora_dropout").getAsDouble() : 0;
            return new LoraConfig(targets, j.get("r").getAsInt(), j.get("lora_alpha").getAsDouble(), dropout);
        } catch (ModelFormatException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new ModelFormatException(file, "malformed adapter config (" + e.getMessage() + ")", e);
        }
    }

    private static void refuse(Path file, JsonObject j, String key, boolean value, String what) throws ModelFormatException {
        if (j.has(key) && !j.get(key).isJsonNull() && j.get(key).getAsBoolean() == value) {
            throw new ModelFormatException(file, key + " = " + value + ": " + what + " is not supported");
        }
    }

    /** Copies a stored tensor into {@code into} (rows reordered by {@code order} when not null), checking its shape. */
    private static void copy(Path file, Map<String, Tensor> tensors, String name, Tensor into, int[] order, Set<String> used)
            throws ModelFormatException {
        Tensor t = tensors.get(name);
        if (t == null) throw new ModelFormatException(file, "missing tensor " + name);
        if (!Arrays.equals(t.shape(), into.shape())) {
            throw new ModelFormatException(file, "tensor " + name + " has shape " + Arrays.toString(t.shape())
                    + ", this model needs " + Arrays.toString(into.shape()));
        }
        if (order == null) into.copyFrom(t);
        else RopeLayout.permuteRows(t, into, order);
        used.add(name);
    }

    /** The row order of B for q and k between the internal adjacent-pair layout and HF's rotate-half; null otherwise. */
    private static int[] ropeOrder(Projection p, LlamaConfig m, boolean toHf) {
        int heads = switch (p) {
            case Q -> m.nHeads();
            case K -> m.nKvHeads();
            default -> 0;
        };
        if (heads == 0) return null;
        int rows = p.outDim(m);
        return toHf ? RopeLayout.toRotateHalf(rows, heads) : RopeLayout.toAdjacent(rows, heads);
    }
}
