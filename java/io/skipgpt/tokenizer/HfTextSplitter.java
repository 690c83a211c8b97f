package io.skipgpt.tokenizer;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The text side of a tokenizer.json before the BPE model: the normalizer (applied to each stretch of text
 * between added tokens) and the pre-tokenizer, which cuts it into the words BPE sees. Supported: normalizers
 * Sequence, Prepend, Replace, NFC/NFD/NFKC/NFKD, Lowercase; pre-tokenizers Sequence, Metaspace, ByteLevel, Split.
 */
final class HfTextSplitter {
    /** GPT-2's word split, used by the ByteLevel pre-tokenizer with use_regex. */
    private static final Pattern GPT2_SPLIT = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    /** A piece of text on its way to BPE; {@code atStart} when it begins at offset 0 of the whole input. */
    private record Piece(String text, boolean atStart) {}

    private enum Behavior { REMOVED, ISOLATED, MERGED_WITH_PREVIOUS, MERGED_WITH_NEXT, CONTIGUOUS }

    private final UnaryOperator<String> normalizer;
    private final UnaryOperator<List<Piece>> preTokenizer;
    /** True when words are byte-level strings (the ByteLevel pre-tokenizer ran). */
    private final boolean byteLevel;

    HfTextSplitter(JsonElement normalizer, JsonElement preTokenizer) {
        this.normalizer = JsonFields.absent(normalizer) ? s -> s : normalizer(JsonFields.object(normalizer, "normalizer"));
        boolean[] sawByteLevel = {false};
        this.preTokenizer = JsonFields.absent(preTokenizer) ? p -> p
                : preTokenizer(JsonFields.object(preTokenizer, "pre_tokenizer"), sawByteLevel);
        this.byteLevel = sawByteLevel[0];
    }

    boolean byteLevel() {
        return byteLevel;
    }

    /** The words of one stretch of text between added tokens; {@code atStart} when it starts the input. */
    List<String> words(String text, boolean atStart) {
        String normalized = normalizer.apply(text);
        List<String> out = new ArrayList<>();
        for (Piece p : preTokenizer.apply(List.of(new Piece(normalized, atStart)))) {
            if (!p.text.isEmpty()) out.add(p.text);
        }
        return out;
    }

    private static UnaryOperator<String> normalizer(JsonObject o) {
        String type = JsonFields.string(o, "type");
        switch (type) {
            case "Sequence": {
                List<UnaryOperator<String>> steps = new ArrayList<>();
                for (JsonElement e : JsonFields.array(o, "normalizers")) steps.add(normalizer(JsonFields.object(e, "normalizer")));
                return s -> {
                    for (UnaryOperator<String> step : steps) s = step.apply(s);
                    return s;
                };
            }
            case "Prepend": {
                String prefix = JsonFields.string(o, "prepend");
                return s -> s.isEmpty() ? s : prefix + s;
            }
            case "Replace": {
                Pattern p = JsonFields.pattern(o);
                String content = JsonFields.string(o, "content");
                return s -> p.matcher(s).replaceAll(Matcher.quoteReplacement(content));
            }
            case "NFC": return s -> Normalizer.normalize(s, Normalizer.Form.NFC);
            case "NFD": return s -> Normalizer.normalize(s, Normalizer.Form.NFD);
            case "NFKC": return s -> Normalizer.normalize(s, Normalizer.Form.NFKC);
            case "NFKD": return s -> Normalizer.normalize(s, Normalizer.Form.NFKD);
            case "Lowercase": return s -> s.toLowerCase(Locale.ROOT);
            default: throw new IllegalArgumentException("normalizer type " + type + " is not supported");
        }
    }

    private static UnaryOperator<List<Piece>> preTokenizer(JsonObject o, boolean[] sawByteLevel) {
        String type = JsonFields.string(o, "type");
        switch (type) {
            case "Sequence": {
                List<UnaryOperator<List<Piece>>> steps = new ArrayList<>();
                for (JsonElement e : JsonFields.array(o, "pretokenizers")) {
                    steps.add(preTokenizer(JsonFields.object(e, "pre_tokenizer"), sawByteLevel));
                }
                return pieces -> {
                    for (UnaryOperator<List<Piece>> step : steps) pieces = step.apply(pieces);
                    return pieces;
                };
            }
            case "Metaspace": return metaspace(o);
            case "ByteLevel": {
                sawByteLevel[0] = true;
                boolean prefixSpace = JsonFields.bool(o, "add_prefix_space", true);
                boolean useRegex = JsonFields.bool(o, "use_regex", true);
                return pieces -> {
                    List<Piece> out = new ArrayList<>();
                    for (Piece p : pieces) {
                        Piece q = prefixSpace && !p.text.startsWith(" ") ? new Piece(" " + p.text, p.atStart) : p;
                        for (Piece w : useRegex ? split(q, GPT2_SPLIT, Behavior.ISOLATED, false) : List.of(q)) {
                            out.add(new Piece(ByteLevelAlphabet.encode(w.text), w.atStart));
                        }
                    }
                    return out;
                };
            }
            case "Split": {
                Pattern p = JsonFields.pattern(o);
                Behavior behavior = behavior(JsonFields.string(o, "behavior"));
                boolean invert = JsonFields.bool(o, "invert", false);
                return pieces -> {
                    List<Piece> out = new ArrayList<>();
                    for (Piece piece : pieces) out.addAll(split(piece, p, behavior, invert));
                    return out;
                };
            }
            default: throw new IllegalArgumentException("pre_tokenizer type " + type + " is not supported");
        }
    }

    /**
     * Metaspace: spaces become the replacement character, which is prepended (always, only at the start of the
     * input, or never) unless the piece already starts with it; with split, each replacement starts a new word.
     */
    private static UnaryOperator<List<Piece>> metaspace(JsonObject o) {
        Metaspace m = Metaspace.of(o);
        String replacement = m.replacement(), scheme = m.prependScheme();
        Pattern delimiter = Pattern.compile(Pattern.quote(replacement));
        return pieces -> {
            List<Piece> out = new ArrayList<>();
            for (Piece p : pieces) {
                String s = p.text.replace(" ", replacement);
                boolean prepend = scheme.equals("always") || scheme.equals("first") && p.atStart;
                if (prepend && !s.startsWith(replacement)) s = replacement + s;
                Piece q = new Piece(s, p.atStart);
                out.addAll(m.split() ? split(q, delimiter, Behavior.MERGED_WITH_NEXT, false) : List.of(q));
            }
            return out;
        };
    }

    private static Behavior behavior(String name) {
        return switch (name) {
            case "Removed" -> Behavior.REMOVED;
            case "Isolated" -> Behavior.ISOLATED;
            case "MergedWithPrevious" -> Behavior.MERGED_WITH_PREVIOUS;
            case "MergedWithNext" -> Behavior.MERGED_WITH_NEXT;
            case "Contiguous" -> Behavior.CONTIGUOUS;
            default -> throw new IllegalArgumentException("Split behavior " + name + " is not supported");
        };
    }

    /**
     * Cuts a piece at the (non-empty) matches of {@code pattern}, treating matches as delimiters as
     * {@code behavior} says; {@code invert} swaps the roles of matches and the text between them.
     */
    private static List<Piece> split(Piece piece, Pattern pattern, Behavior behavior, boolean invert) {
        String s = piece.text;
        // Spans covering s in order: [start, end, isDelimiter].
        List<int[]> spans = new ArrayList<>();
        Matcher m = pattern.matcher(s);
        int last = 0;
        while (m.find()) {
            if (m.end() == m.start()) continue;
            if (m.start() > last) spans.add(new int[] {last, m.start(), invert ? 1 : 0});
            spans.add(new int[] {m.start(), m.end(), invert ? 0 : 1});
            last = m.end();
        }
        if (last < s.length()) spans.add(new int[] {last, s.length(), invert ? 1 : 0});

        List<int[]> out = new ArrayList<>(); // [start, end]
        if (behavior == Behavior.MERGED_WITH_NEXT) {
            // Right to left: a delimiter joins the span after it unless that span is a delimiter too.
            boolean nextIsDelimiter = false;
            for (int i = spans.size() - 1; i >= 0; i--) {
                int[] span = spans.get(i);
                boolean delimiter = span[2] == 1;
                if (delimiter && !nextIsDelimiter && !out.isEmpty()) out.get(out.size() - 1)[0] = span[0];
                else out.add(new int[] {span[0], span[1]});
                nextIsDelimiter = delimiter;
            }
            Collections.reverse(out);
        } else {
            boolean previousIsDelimiter = false;
            for (int[] span : spans) {
                boolean delimiter = span[2] == 1;
                boolean merge = switch (behavior) {
                    case MERGED_WITH_PREVIOUS -> delimiter && !previousIsDelimiter && !out.isEmpty();
                    case CONTIGUOUS -> delimiter && previousIsDelimiter;
                    default -> false;
                };
                if (merge) out.get(out.size() - 1)[1] = span[1];
                else if (!(behavior == Behavior.REMOVED && delimiter)) out.add(new int[] {span[0], span[1]});
                previousIsDelimiter = delimiter;
            }
        }
        List<Piece> pieces = new ArrayList<>(out.size());
        for (int[] r : out) pieces.add(new Piece(s.substring(r[0], r[1]), piece.atStart && r[0] == 0));
        return pieces;
    }
}
