package io.skipgpt.tokenizer;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.skipgpt.io.ModelFormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A Hugging Face tokenizer.json with a BPE model: LLaMA-2 style SentencePiece BPE (byte fallback, "▁" for
 * spaces via a Prepend/Replace normalizer or a Metaspace pre-tokenizer) and byte-level BPE (GPT-2, LLaMA-3:
 * regex split, bytes mapped to printable characters). Added tokens (such as {@code <s>} or
 * {@code <|begin_of_text|>}) are matched verbatim in the text before anything else. BOS and EOS come from the
 * tokenizer_config.json beside the file when it names them, else from added tokens with the usual names.
 */
public final class HfTokenizer implements Tokenizer {
    private final String json;
    private final String configJson;
    private final RankedBpe model;
    private final HfTextSplitter splitter;
    private final HfDecoder decoder;
    /** Added tokens by content, the pattern that finds them (longest first), and the ones decode skips. */
    private final Map<String, Integer> added = new HashMap<>();
    private final Pattern addedPattern;
    private final Set<Integer> special = new HashSet<>();
    private final String[] tokens;
    private final int bos;
    private final int eos;

    private HfTokenizer(String json, String configJson) {
        this.json = json;
        this.configJson = configJson;
        JsonObject root = JsonFields.object(JsonParser.parseString(json), "the file");
        model = new RankedBpe(JsonFields.object(root.get("model"), "\"model\""));
        splitter = new HfTextSplitter(root.get("normalizer"), root.get("pre_tokenizer"));
        decoder = new HfDecoder(root.get("decoder"));
        int maxId = model.vocab.values().stream().mapToInt(Integer::intValue).max().orElse(-1);
        List<String> lstrip = new ArrayList<>(), rstrip = new ArrayList<>();
        if (!JsonFields.absent(root.get("added_tokens"))) {
            for (JsonElement e : JsonFields.array(root, "added_tokens")) {
                JsonObject t = JsonFields.object(e, "added token");
                String content = JsonFields.string(t, "content");
                int id = JsonFields.integer(t.get("id"), "added token id");
                if (content.isEmpty() || id < 0) throw new IllegalArgumentException("added token " + id + " is empty");
                added.put(content, id);
                if (JsonFields.bool(t, "special", false)) special.add(id);
                if (JsonFields.bool(t, "lstrip", false)) lstrip.add(content);
                if (JsonFields.bool(t, "rstrip", false)) rstrip.add(content);
                maxId = Math.max(maxId, id);
            }
        }
        tokens = new String[maxId + 1];
        model.vocab.forEach((piece, id) -> {
            if (id < 0) throw new IllegalArgumentException("vocabulary entry \"" + piece + "\" has id " + id);
            tokens[id] = piece;
        });
        added.forEach((content, id) -> tokens[id] = content);
        List<String> alternatives = new ArrayList<>();
        added.keySet().stream().sorted(Comparator.comparingInt(String::length).reversed()).forEach(c ->
                alternatives.add((lstrip.contains(c) ? "\\s*" : "") + Pattern.quote(c) + (rstrip.contains(c) ? "\\s*" : "")));
        addedPattern = alternatives.isEmpty() ? null : Pattern.compile(String.join("|", alternatives));
        JsonObject config = configJson == null ? new JsonObject() : JsonFields.object(JsonParser.parseString(configJson),
                "tokenizer_config.json");
        bos = special(config, "bos_token", "<s>", "<|begin_of_text|>", "<|endoftext|>");
        eos = special(config, "eos_token", "</s>", "<|end_of_text|>", "<|endoftext|>");
    }

    /**
     * Loads a tokenizer.json (or the tokenizer.json in a directory) and the tokenizer_config.json beside it
     * when there is one.
     */
    public static HfTokenizer load(Path path) throws ModelFormatException {
        Path file = Files.isDirectory(path) ? path.resolve("tokenizer.json") : path;
        String json = readText(file);
        Path configFile = file.resolveSibling("tokenizer_config.json");
        String config = Files.isRegularFile(configFile) ? readText(configFile) : null;
        try {
            return new HfTokenizer(json, config);
        } catch (JsonParseException | IllegalArgumentException | IllegalStateException e) {
            throw new ModelFormatException(file, "unusable tokenizer: " + e.getMessage(), e);
        }
    }

    private static String readText(Path file) throws ModelFormatException {
        try {
            return Files.readString(file);
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(file, "no such file", e);
        } catch (IOException | SecurityException e) {
            throw new ModelFormatException(file, "cannot read: " + e, e);
        }
    }

    /** The token named by {@code key} in tokenizer_config.json, else the first present of the usual names. */
    private int special(JsonObject config, String key, String... usualNames) {
        JsonElement e = config.get(key);
        if (!JsonFields.absent(e)) {
            String content = e.isJsonObject() ? JsonFields.string(e.getAsJsonObject(), "content")
                    : JsonFields.string(e, "tokenizer_config.json " + key);
            Integer id = idOf(content);
            if (id == null) throw new IllegalArgumentException(key + " \"" + content + "\" is not a token");
            return id;
        }
        for (String name : usualNames) {
            Integer id = idOf(name);
            if (id != null) return id;
        }
        throw new IllegalArgumentException("no " + key + " in tokenizer_config.json and none of the tokens "
                + String.join(", ", usualNames));
    }

    private Integer idOf(String token) {
        Integer id = added.get(token);
        return id != null ? id : model.vocab.get(token);
    }

    /** The tokenizer.json text as loaded (writers copy it). */
    public String tokenizerJson() {
        return json;
    }

    /** The tokenizer_config.json text found beside it, or null. */
    public String tokenizerConfigJson() {
        return configJson;
    }

    /** The token string of an id (a vocabulary piece or an added token). */
    public String token(int id) {
        String t = id >= 0 && id < tokens.length ? tokens[id] : null;
        if (t == null) throw new IllegalArgumentException("token id " + id + " is not in this tokenizer");
        return t;
    }

    @Override
    public int[] encode(String text) {
        List<int[]> parts = new ArrayList<>();
        int from = 0;
        if (addedPattern != null) {
            Matcher m = addedPattern.matcher(text);
            while (m.find()) {
                addWords(text.substring(from, m.start()), from == 0, parts);
                Integer id = added.get(m.group());
                parts.add(new int[] {id != null ? id : added.get(m.group().strip())});
                from = m.end();
            }
        }
        addWords(text.substring(from), from == 0, parts);
        int n = 0;
        for (int[] p : parts) n += p.length;
        int[] out = new int[n];
        n = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, n, p.length);
            n += p.length;
        }
        return out;
    }

    private void addWords(String text, boolean atStart, List<int[]> parts) {
        if (text.isEmpty()) return;
        for (String word : splitter.words(text, atStart)) parts.add(model.encodeWord(word));
    }

    @Override
    public String decode(int[] ids) {
        List<String> pieces = new ArrayList<>(ids.length);
        for (int id : ids) {
            if (!special.contains(id)) pieces.add(token(id));
        }
        return decoder.decode(pieces);
    }

    @Override
    public int bos() {
        return bos;
    }

    @Override
    public int eos() {
        return eos;
    }

    @Override
    public int vocabSize() {
        return tokens.length;
    }

    @Override
    public String describe() {
        String kind = splitter.byteLevel() ? "byte-level" : model.byteFallback() ? "SentencePiece-style, byte fallback"
                : "SentencePiece-style";
        return "Hugging Face BPE (" + kind + "), " + tokens.length + " tokens, " + added.size() + " added";
    }
}
