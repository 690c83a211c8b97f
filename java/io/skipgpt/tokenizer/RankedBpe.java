package io.skipgpt.tokenizer;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Hugging Face's BPE model: a vocabulary and a ranked list of merges. A word starts as its code points (a code
 * point not in the vocabulary becomes {@code <0xNN>} byte tokens with byte_fallback, else the unknown token),
 * then the adjacent pair with the lowest merge rank merges, ties going to the leftmost pair, until none is left.
 */
final class RankedBpe {
    /** Words up to this many chars are cached (byte-level tokenizers see the same words again and again). */
    private static final int CACHED_WORD_CHARS = 64;
    private static final int CACHE_ENTRIES = 1 << 16;

    final Map<String, Integer> vocab = new HashMap<>();
    /** (left id << 32 | right id) -> (rank << 32 | merged id). */
    private final Map<Long, Long> merges = new HashMap<>();
    private final int unk;
    private final boolean byteFallback;
    private final boolean fuseUnk;
    private final boolean ignoreMerges;
    private final int[] byteTokens = new int[256];
    /** Results by word; concurrent because one tokenizer may serve several threads. Entries are never mutated. */
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    /** Reads the "model" object of a tokenizer.json. */
    RankedBpe(JsonObject model) {
        String type = JsonFields.string(model, "type", "BPE");
        if (!type.equals("BPE")) throw new IllegalArgumentException("model type " + type + " is not supported (only BPE)");
        for (String key : new String[] {"continuing_subword_prefix", "end_of_word_suffix"}) {
            if (!JsonFields.string(model, key, "").isEmpty()) {
                throw new IllegalArgumentException("BPE " + key + " is not supported");
            }
        }
        JsonObject v = JsonFields.object(model.get("vocab"), "model.vocab");
        for (Map.Entry<String, JsonElement> e : v.entrySet()) {
            vocab.put(e.getKey(), JsonFields.integer(e.getValue(), "id of vocabulary entry \"" + e.getKey() + "\""));
        }
        JsonArray list = JsonFields.array(model, "merges");
        for (int rank = 0; rank < list.size(); rank++) {
            String[] pair = mergePair(list.get(rank));
            Integer a = vocab.get(pair[0]), b = vocab.get(pair[1]), merged = vocab.get(pair[0] + pair[1]);
            if (a == null || b == null || merged == null) {
                throw new IllegalArgumentException("merge " + rank + " (\"" + pair[0] + "\" + \"" + pair[1]
                        + "\") uses a token that is not in the vocabulary");
            }
            merges.putIfAbsent(key(a, b), key(rank, merged));
        }
        String unkToken = JsonFields.string(model, "unk_token", null);
        if (unkToken != null && !vocab.containsKey(unkToken)) {
            throw new IllegalArgumentException("unk_token \"" + unkToken + "\" is not in the vocabulary");
        }
        unk = unkToken == null ? -1 : vocab.get(unkToken);
        byteFallback = JsonFields.bool(model, "byte_fallback", false);
        fuseUnk = JsonFields.bool(model, "fuse_unk", false);
        ignoreMerges = JsonFields.bool(model, "ignore_merges", false);
        for (int b = 0; b < 256; b++) {
            Integer id = vocab.get(String.format("<0x%02X>", b));
            byteTokens[b] = id == null ? -1 : id;
        }
    }

    boolean byteFallback() {
        return byteFallback;
    }

    /** A merges entry: "left right" (older files) or ["left", "right"] (newer ones, which allow spaces). */
    private static String[] mergePair(JsonElement e) {
        if (e.isJsonArray() && e.getAsJsonArray().size() == 2) {
            JsonArray a = e.getAsJsonArray();
            return new String[] {JsonFields.string(a.get(0), "merge part"), JsonFields.string(a.get(1), "merge part")};
        }
        String s = JsonFields.string(e, "merge");
        int space = s.indexOf(' ');
        if (space < 0 || s.indexOf(' ', space + 1) >= 0) throw new IllegalArgumentException("malformed merge \"" + s + "\"");
        return new String[] {s.substring(0, space), s.substring(space + 1)};
    }

    private static long key(int hi, int lo) {
        return ((long) hi << 32) | (lo & 0xFFFFFFFFL);
    }

    /** The tokens of one pre-tokenized word. */
    int[] encodeWord(String word) {
        if (ignoreMerges && vocab.containsKey(word)) return new int[] {vocab.get(word)};
        boolean cacheable = word.length() <= CACHED_WORD_CHARS;
        if (cacheable) {
            int[] hit = cache.get(word);
            if (hit != null) return hit;
        }
        int[] symbols = new int[word.length() * 3];
        int n = 0;
        for (int i = 0; i < word.length(); ) {
            int len = Character.charCount(word.codePointAt(i));
            String ch = word.substring(i, i + len);
            i += len;
            Integer id = vocab.get(ch);
            if (id != null) {
                symbols[n++] = id;
                continue;
            }
            byte[] bytes = ch.getBytes(StandardCharsets.UTF_8);
            boolean allBytes = byteFallback;
            for (byte b : bytes) allBytes &= byteTokens[b & 0xFF] >= 0;
            if (allBytes) {
                for (byte b : bytes) symbols[n++] = byteTokens[b & 0xFF];
            } else if (unk >= 0 && !(fuseUnk && n > 0 && symbols[n - 1] == unk)) {
                symbols[n++] = unk;
            }
        }
        int[] out = BpeMerger.merge(Arrays.copyOf(symbols, n), this::findMerge);
        if (cacheable) {
            if (cache.size() >= CACHE_ENTRIES) cache.clear();
            cache.put(word, out);
        }
        return out;
    }

    private BpeMerger.Merge findMerge(int left, int right) {
        Long m = merges.get(key(left, right));
        return m == null ? null : new BpeMerger.Merge((int) (long) m, (double) (m >>> 32));
    }
}
