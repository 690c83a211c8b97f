package io.skipgpt.tokenizer;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A tokenizer.json "decoder": a chain of steps over the token strings whose concatenation is the text.
 * Supported: Sequence, Replace, ByteFallback, Fuse, Strip, Metaspace, ByteLevel.
 */
final class HfDecoder {
    private final UnaryOperator<List<String>> chain;

    HfDecoder(JsonElement decoder) {
        chain = JsonFields.absent(decoder) ? t -> t : step(JsonFields.object(decoder, "decoder"));
    }

    String decode(List<String> tokens) {
        return String.join("", chain.apply(tokens));
    }

    private static UnaryOperator<List<String>> step(JsonObject o) {
        String type = JsonFields.string(o, "type");
        switch (type) {
            case "Sequence": {
                List<UnaryOperator<List<String>>> steps = new ArrayList<>();
                for (JsonElement e : JsonFields.array(o, "decoders")) steps.add(step(JsonFields.object(e, "decoder")));
                return tokens -> {
                    for (UnaryOperator<List<String>> s : steps) tokens = s.apply(tokens);
                    return tokens;
                };
            }
            case "Replace": {
                Pattern pattern = JsonFields.pattern(o);
                String content = Matcher.quoteReplacement(JsonFields.string(o, "content"));
                return tokens -> map(tokens, t -> pattern.matcher(t).replaceAll(content));
            }
            case "ByteFallback": return HfDecoder::byteFallback;
            case "Fuse": return tokens -> List.of(String.join("", tokens));
            case "Strip": {
                String content = JsonFields.string(o, "content");
                int start = JsonFields.integer(o, "start", 0), stop = JsonFields.integer(o, "stop", 0);
                return tokens -> map(tokens, t -> strip(t, content, start, stop));
            }
            case "Metaspace": {
                Metaspace m = Metaspace.of(o);
                // The first token loses its replacement characters (the prepended space) unless nothing was prepended.
                return tokens -> {
                    List<String> out = new ArrayList<>(tokens.size());
                    for (int i = 0; i < tokens.size(); i++) {
                        out.add(tokens.get(i).replace(m.replacement(),
                                i == 0 && !m.prependScheme().equals("never") ? "" : " "));
                    }
                    return out;
                };
            }
            case "ByteLevel": return tokens -> {
                ByteArrayOutputStream bytes = new ByteArrayOutputStream();
                for (String t : tokens) ByteLevelAlphabet.decodeInto(t, bytes);
                return List.of(bytes.toString(StandardCharsets.UTF_8));
            };
            default: throw new IllegalArgumentException("decoder type " + type + " is not supported");
        }
    }

    private static List<String> map(List<String> tokens, UnaryOperator<String> f) {
        List<String> out = new ArrayList<>(tokens.size());
        for (String t : tokens) out.add(f.apply(t));
        return out;
    }

    /** Runs of {@code <0xNN>} tokens become the UTF-8 text of their bytes, or one U+FFFD per byte if invalid. */
    private static List<String> byteFallback(List<String> tokens) {
        List<String> out = new ArrayList<>(tokens.size());
        ByteArrayOutputStream run = new ByteArrayOutputStream();
        for (String t : tokens) {
            int b = SentencePieceBpe.byteValue(t);
            if (b >= 0) {
                run.write(b);
                continue;
            }
            flush(run, out);
            out.add(t);
        }
        flush(run, out);
        return out;
    }

    private static void flush(ByteArrayOutputStream run, List<String> out) {
        if (run.size() == 0) return;
        byte[] bytes = run.toByteArray();
        run.reset();
        try {
            out.add(StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString());
        } catch (CharacterCodingException e) {
            out.add("\uFFFD".repeat(bytes.length));
        }
    }

    /** Removes up to {@code start} leading and {@code stop} trailing copies of {@code content} (one character). */
    private static String strip(String t, String content, int start, int stop) {
        int from = 0, to = t.length();
        for (int i = 0; i < start && t.startsWith(content, from); i++) from += content.length();
        for (int i = 0; i < stop && to - content.length() >= from && t.startsWith(content, to - content.length()); i++) {
            to -= content.length();
        }
        return t.substring(from, to);
    }
}
