package io.skipgpt.tokenizer;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import io.skipgpt.io.AtomicFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Writes Hugging Face tokenizer files for a SentencePiece BPE: tokenizer.json in the LLaMA-2 layout (BPE with
 * byte fallback, a Prepend("▁") + Replace(" " -> "▁") normalizer, the Replace/ByteFallback/Fuse/Strip decoder,
 * a BOS-adding post-processor) and tokenizer_config.json.
 *
 * <p>SentencePiece merges whichever adjacent pair forms the highest-scoring piece; Hugging Face merges the
 * adjacent pair that comes first in its merges list. Listing, for every piece, every split into two pieces,
 * ordered by the piece's score (highest first), makes the two agree: the same pairs can merge, in the same order.
 * (Only equal scores of different pieces could order differently; trained vocabularies have none.)
 */
public final class TokenizerJson {
    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().serializeNulls()
            .create();

    private TokenizerJson() {}

    /** Writes {@code t} as a tokenizer.json (atomically). Pieces must be unique, as HF's vocabulary is a map. */
    public static void write(Path file, SentencePieceBpe t) throws IOException {
        AtomicFiles.write(file, GSON.toJson(toJson(t)).getBytes(StandardCharsets.UTF_8));
    }

    static JsonObject toJson(SentencePieceBpe t) {
        String[] pieces = t.pieces();
        float[] scores = t.scores();
        Set<String> seen = new HashSet<>();
        JsonObject vocab = new JsonObject();
        for (int id = 0; id < pieces.length; id++) {
            if (!seen.add(pieces[id])) throw new IllegalArgumentException("piece \"" + pieces[id] + "\" appears twice");
            vocab.addProperty(pieces[id], id);
        }

        record Merge(String left, String right, float score, int id, int split) {}
        List<Merge> merges = new ArrayList<>();
        for (int id = 0; id < pieces.length; id++) {
            String p = pieces[id];
            if (t.textPiece(p) != id) continue;
            for (int split = p.offsetByCodePoints(0, 1); split < p.length(); split = p.offsetByCodePoints(split, 1)) {
                String left = p.substring(0, split), right = p.substring(split);
                // + 0f turns -0.0 into 0.0: SentencePiece compares scores as numbers, where the two are equal.
                if (t.textPiece(left) >= 0 && t.textPiece(right) >= 0) merges.add(new Merge(left, right, scores[id] + 0f, id, split));
            }
        }
        merges.sort(Comparator.comparing((Merge m) -> -m.score).thenComparingInt(Merge::id).thenComparingInt(Merge::split));
        boolean spaces = merges.stream().anyMatch(m -> m.left.contains(" ") || m.right.contains(" "));
        JsonArray mergeList = new JsonArray();
        for (Merge m : merges) {
            if (spaces) {
                JsonArray pair = new JsonArray();
                pair.add(m.left);
                pair.add(m.right);
                mergeList.add(pair);
            } else {
                mergeList.add(m.left + " " + m.right);
            }
        }

        String sp = String.valueOf(SentencePieceBpe.SPACE);
        JsonObject root = new JsonObject();
        root.addProperty("version", "1.0");
        root.add("truncation", JsonNull.INSTANCE);
        root.add("padding", JsonNull.INSTANCE);
        JsonArray added = new JsonArray();
        for (int id = 0; id < pieces.length; id++) {
            if (!t.isControl(id)) continue;
            JsonObject a = new JsonObject();
            a.addProperty("id", id);
            a.addProperty("content", pieces[id]);
            a.addProperty("single_word", false);
            a.addProperty("lstrip", false);
            a.addProperty("rstrip", false);
            a.addProperty("normalized", false);
            a.addProperty("special", true);
            added.add(a);
        }
        root.add("added_tokens", added);
        root.add("normalizer", sequence("normalizers",
                obj("type", "Prepend", "prepend", sp),
                replace(" ", sp)));
        root.add("pre_tokenizer", JsonNull.INSTANCE);
        root.add("post_processor", bosTemplate(pieces[t.bos()], t.bos()));
        JsonObject strip = obj("type", "Strip", "content", " ");
        strip.addProperty("start", 1);
        strip.addProperty("stop", 0);
        root.add("decoder", sequence("decoders", replace(sp, " "), obj("type", "ByteFallback"), obj("type", "Fuse"), strip));
        JsonObject model = new JsonObject();
        model.addProperty("type", "BPE");
        model.add("dropout", JsonNull.INSTANCE);
        model.addProperty("unk_token", pieces[t.unk()]);
        model.add("continuing_subword_prefix", JsonNull.INSTANCE);
        model.add("end_of_word_suffix", JsonNull.INSTANCE);
        model.addProperty("fuse_unk", true);
        model.addProperty("byte_fallback", true);
        model.addProperty("ignore_merges", false);
        model.add("vocab", vocab);
        model.add("merges", mergeList);
        root.add("model", model);
        return root;
    }

    /**
     * Writes tokenizer_config.json for {@code t}: its BOS/EOS (and for SentencePiece the unknown) token,
     * BOS added to each sequence, and the model's context length as model_max_length.
     */
    public static void writeConfig(Path file, Tokenizer t, int modelMaxLength) throws IOException {
        JsonObject c = new JsonObject();
        c.addProperty("add_bos_token", true);
        c.addProperty("add_eos_token", false);
        c.addProperty("bos_token", token(t, t.bos()));
        c.addProperty("eos_token", token(t, t.eos()));
        if (t instanceof SentencePieceBpe s) {
            c.addProperty("unk_token", s.pieces()[s.unk()]);
            c.addProperty("tokenizer_class", "LlamaTokenizerFast");
            c.addProperty("legacy", true);
        } else {
            c.addProperty("tokenizer_class", "PreTrainedTokenizerFast");
        }
        c.add("pad_token", JsonNull.INSTANCE);
        c.addProperty("clean_up_tokenization_spaces", false);
        c.addProperty("model_max_length", modelMaxLength);
        AtomicFiles.write(file, GSON.toJson(c).getBytes(StandardCharsets.UTF_8));
    }

    private static String token(Tokenizer t, int id) {
        if (t instanceof SentencePieceBpe s) return s.pieces()[id];
        if (t instanceof HfTokenizer h) return h.token(id);
        throw new IllegalArgumentException("cannot name the tokens of " + t.describe());
    }

    private static JsonObject obj(String... keyValues) {
        JsonObject o = new JsonObject();
        for (int i = 0; i < keyValues.length; i += 2) o.addProperty(keyValues[i], keyValues[i + 1]);
        return o;
    }

    private static JsonObject replace(String from, String to) {
        JsonObject o = obj("type", "Replace", "content", to);
        o.add("pattern", obj("String", from));
        return o;
    }

    private static JsonObject sequence(String listKey, JsonObject... steps) {
        JsonObject o = obj("type", "Sequence");
        JsonArray list = new JsonArray();
        for (JsonObject s : steps) list.add(s);
        o.add(listKey, list);
        return o;
    }

    /** LLaMA's post-processor: BOS before each sequence (HF tools add it when asked for special tokens). */
    private static JsonObject bosTemplate(String bos, int bosId) {
        JsonArray single = new JsonArray();
        single.add(templatePart("SpecialToken", bos, 0));
        single.add(templatePart("Sequence", "A", 0));
        JsonArray pair = single.deepCopy();
        pair.add(templatePart("SpecialToken", bos, 1));
        pair.add(templatePart("Sequence", "B", 1));
        JsonObject entry = obj("id", bos);
        JsonArray ids = new JsonArray();
        ids.add(bosId);
        entry.add("ids", ids);
        JsonArray tokens = new JsonArray();
        tokens.add(bos);
        entry.add("tokens", tokens);
        JsonObject specials = new JsonObject();
        specials.add(bos, entry);
        JsonObject o = obj("type", "TemplateProcessing");
        o.add("single", single);
        o.add("pair", pair);
        o.add("special_tokens", specials);
        return o;
    }

    /** {"kind": {"id": id, "type_id": typeId}}, an item of a template. */
    private static JsonObject templatePart(String kind, String id, int typeId) {
        JsonObject inner = obj("id", id);
        inner.addProperty("type_id", typeId);
        JsonObject o = new JsonObject();
        o.add(kind, inner);
        return o;
    }
}
