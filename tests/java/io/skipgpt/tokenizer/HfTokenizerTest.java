package io.skipgpt.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.skipgpt.io.ModelFormatException;
import io.skipgpt.io.TestData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HfTokenizerTest {
    @TempDir
    Path dir;

    private static final List<String> AWKWARD = List.of("", " ", "  ", "a", " leading", "trailing ",
            "multiple   spaces  here", "naïve café 日本 🙂", "line one\nline two\n\n", "\ttab\r\n", "Once upon a time",
            "ÀÉÎÕÜ ñ ß", "emoji 👩‍👩‍👧 mix", "\u0000 nul", "“quotes” — dash… ™");

    /** Writes t as tokenizer.json + tokenizer_config.json and loads it back through the HF reader. */
    private HfTokenizer viaJson(SentencePieceBpe t) throws Exception {
        TokenizerJson.write(dir.resolve("tokenizer.json"), t);
        TokenizerJson.writeConfig(dir.resolve("tokenizer_config.json"), t, 512);
        return HfTokenizer.load(dir);
    }

    private static void assertSameEncoding(Tokenizer expected, Tokenizer actual, String text) {
        int[] ids = expected.encode(text);
        assertArrayEquals(ids, actual.encode(text), () -> "text \"" + text + "\"");
        assertEquals(text, expected.decode(ids), () -> "decode of \"" + text + "\"");
        assertEquals(text, actual.decode(ids), () -> "HF decode of \"" + text + "\"");
    }

    @Test
    void stories260KTokenizerSurvivesTokenizerJsonExactly() throws Exception {
        SentencePieceBpe spm = Llama2cTokenizer.read(TestData.tok512());
        HfTokenizer hf = viaJson(spm);
        assertEquals(512, hf.vocabSize());
        assertEquals(1, hf.bos());
        assertEquals(2, hf.eos());
        List<String> lines = Files.readAllLines(TestData.tinyStoriesHead());
        for (String line : lines) assertSameEncoding(spm, hf, line);
        assertSameEncoding(spm, hf, String.join("\n", lines));
        for (String s : AWKWARD) assertSameEncoding(spm, hf, s);
        // Added tokens match verbatim, and (as in HF's legacy LLaMA layout) the text after one gets its own "▁".
        assertArrayEquals(new int[] {1, 410, 444}, hf.encode("<s>x"));
    }

    @Test
    void metaspaceLayoutFollowsHuggingFace() throws Exception {
        // The newer LLaMA layout: no normalizer, a Metaspace pre-tokenizer and decoder. Expected ids and texts
        // are those of Hugging Face tokenizers 0.23.2 on the same files.
        SentencePieceBpe spm = Llama2cTokenizer.read(TestData.tok512());
        JsonObject json = TokenizerJson.toJson(spm);
        json.add("normalizer", JsonNull.INSTANCE);
        JsonObject meta = JsonParser.parseString("{\"type\": \"Metaspace\", \"replacement\": \"▁\","
                + " \"prepend_scheme\": \"first\", \"split\": false}").getAsJsonObject();
        json.add("pre_tokenizer", meta);
        json.add("decoder", meta);
        Files.writeString(dir.resolve("tokenizer.json"), json.toString());
        HfTokenizer first = HfTokenizer.load(dir);
        assertArrayEquals(new int[] {403, 407, 261, 378}, first.encode("Once upon a time"));
        assertArrayEquals(new int[] {278, 411, 380}, first.encode(" lead")); // no second "▁" when one is there
        assertArrayEquals(new int[] {1, 444}, first.encode("<s>x")); // "first": only at the start of the input
        assertArrayEquals(new int[] {410, 444, 1, 348}, first.encode("x<s> y"));
        assertEquals("lead", first.decode(new int[] {278, 411, 380}));
        assertEquals("a  b<0x0A>", first.decode(new int[] {261, 410, 268, 13})); // this decoder has no byte fallback
        meta.addProperty("prepend_scheme", "always");
        meta.addProperty("split", true);
        Files.writeString(dir.resolve("tokenizer.json"), json.toString());
        HfTokenizer always = HfTokenizer.load(dir);
        assertArrayEquals(new int[] {1, 410, 444}, always.encode("<s>x"));
        assertArrayEquals(new int[] {261, 410, 268, 13}, always.encode("a  b\n"));
        assertArrayEquals(new int[] {403, 407, 261, 378}, always.encode("Once upon a time"));
    }

    @Test
    void aMetaspaceDecoderIsCheckedAsThePreTokenizerIs() throws Exception {
        JsonObject json = TokenizerJson.toJson(Llama2cTokenizer.read(TestData.tok512()));
        Path file = dir.resolve("tokenizer.json");
        json.add("decoder", JsonParser.parseString("{\"type\": \"Metaspace\", \"replacement\": \"__\"}"));
        Files.writeString(file, json.toString());
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(dir));
        assertEquals(file + ": unusable tokenizer: Metaspace replacement \"__\" is not one character", e.getMessage());
        json.add("decoder", JsonParser.parseString("{\"type\": \"Metaspace\", \"prepend_scheme\": \"sometimes\"}"));
        Files.writeString(file, json.toString());
        e = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(dir));
        assertEquals(file + ": unusable tokenizer: Metaspace prepend_scheme sometimes is not supported", e.getMessage());
    }

    @Test
    void syntheticTokenizerSurvivesTokenizerJsonExactly() throws Exception {
        // Byte tokens for all bytes, single characters, and random merged pieces with distinct scores.
        List<String> pieces = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        for (int b = 0; b < 256; b++) pieces.add(String.format("<0x%02X>", b));
        String alphabet = "▁abcdeé日";
        alphabet.codePoints().forEach(cp -> pieces.add(new String(Character.toChars(cp))));
        Random rnd = new Random(3);
        while (pieces.size() < 400) {
            StringBuilder p = new StringBuilder();
            for (int k = 0, n = 2 + rnd.nextInt(4); k < n; k++) p.appendCodePoint(alphabet.codePointAt(alphabet.offsetByCodePoints(0, rnd.nextInt(8))));
            if (!pieces.contains(p.toString())) pieces.add(p.toString());
        }
        float[] scores = new float[pieces.size()];
        for (int i = 259; i < scores.length; i++) scores[i] = -(i - 259) * 0.25f + (i % 7 == 0 ? 50 : 0);
        SentencePieceBpe spm = new SentencePieceBpe(pieces.toArray(String[]::new), scores, 1, 2);
        HfTokenizer hf = viaJson(spm);
        String[] atoms = {"a", "b", "c", "d", "e", " ", "é", "日", "x", "y", "\n", "🙂"};
        for (int k = 0; k < 300; k++) {
            StringBuilder text = new StringBuilder();
            for (int n = rnd.nextInt(60); n > 0; n--) text.append(atoms[rnd.nextInt(atoms.length)]);
            assertSameEncoding(spm, hf, text.toString());
        }
        for (String s : AWKWARD) assertSameEncoding(spm, hf, s);
    }

    private Path fixture(String name) throws Exception {
        // A hand-written GPT-2 style byte-level tokenizer: 21 tokens, merges building "Hello", "Ġworld", "Ã©" (é).
        String json = """
            {
              "version": "1.0",
              "added_tokens": [
                {"id": 0, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false,
                 "normalized": false, "special": true}%s
              ],
              "normalizer": null,
              "pre_tokenizer": %s,
              "post_processor": null,
              "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
              "model": {
                "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
                "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": %s,
                "vocab": {"<|endoftext|>": 0, "H": 1, "e": 2, "l": 3, "o": 4, "Ġ": 5, "w": 6, "r": 7, "d": 8,
                          "Ã": 9, "©": 10, "Ċ": 11, "ll": 12, "llo": 13, "Ġw": 14, "or": 15, "Ġwor": 16, "ld": 17,
                          "Ġworld": 18, "He": 19, "Hello": 20, "Ã©": 21},
                "merges": ["l l", "ll o", "Ġ w", "o r", "Ġw or", "l d", %s"H e", "He llo", "Ã ©"]
              }
            }
            """;
        String gpt2Pre = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}";
        String llama3Pre = """
            {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+"},
               "behavior": "Isolated", "invert": false},
              {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}""";
        String llama3Added = ",\n{\"id\": 22, \"content\": \"<|begin_of_text|>\", \"lstrip\": false, \"rstrip\": false,"
                + " \"normalized\": false, \"special\": true}";
        boolean llama3 = name.equals("llama3");
        Path sub = dir.resolve(name);
        Files.createDirectories(sub);
        // LLaMA-3 style: ignore_merges, and no merge builds "Ġworld": only the whole-word lookup finds it.
        Files.writeString(sub.resolve("tokenizer.json"), String.format(json, llama3 ? llama3Added : "",
                llama3 ? llama3Pre : gpt2Pre, llama3, llama3 ? "" : "\"Ġwor ld\", "));
        return sub;
    }

    @Test
    void byteLevelTokenizerEncodesAndDecodesKnownIds() throws Exception {
        // Expected ids checked against Hugging Face tokenizers 0.23.2 on the same tokenizer.json.
        for (String kind : List.of("gpt2", "llama3")) {
            HfTokenizer t = HfTokenizer.load(fixture(kind).resolve("tokenizer.json"));
            assertArrayEquals(new int[] {20, 18}, t.encode("Hello world"), kind);
            assertArrayEquals(new int[] {20, 18, 11, 21}, t.encode("Hello world\né"), kind);
            assertArrayEquals(new int[] {20, 0, 18}, t.encode("Hello<|endoftext|> world"), kind);
            assertArrayEquals(new int[] {21, 21, 5, 5, 20}, t.encode("éé  Hello"), kind);
            assertArrayEquals(new int[0], t.encode(""), kind);
            assertEquals("Hello world\né", t.decode(new int[] {20, 18, 11, 21}), kind);
            assertEquals("Hello world", t.decode(new int[] {20, 0, 18}), kind); // special tokens are skipped
            assertEquals(0, t.eos(), kind); // no tokenizer_config.json: <|endoftext|> is the usual name
        }
        HfTokenizer llama3 = HfTokenizer.load(fixture("llama3"));
        assertArrayEquals(new int[] {22, 20, 18}, llama3.encode("<|begin_of_text|>Hello world"));
        assertArrayEquals(new int[] {20, 16}, llama3.encode("Hello wor"));
        assertEquals(22, llama3.bos());
        assertTrue(llama3.describe().contains("byte-level"), llama3.describe());
    }

    @Test
    void bosAndEosComeFromTokenizerConfig() throws Exception {
        Path sub = fixture("gpt2");
        Files.writeString(sub.resolve("tokenizer_config.json"),
                "{\"bos_token\": {\"content\": \"Hello\"}, \"eos_token\": \"Ġworld\"}");
        HfTokenizer t = HfTokenizer.load(sub);
        assertEquals(20, t.bos());
        assertEquals(18, t.eos());
    }

    @Test
    void unusableFilesAreReportedWithTheirPath() throws Exception {
        Path bad = dir.resolve("tokenizer.json");
        Files.writeString(bad, "{\"model\": {\"type\": \"BPE\", \"vocab\": ");
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(bad));
        assertTrue(e.getMessage().startsWith(bad + ": unusable tokenizer"), e.getMessage());
        Files.writeString(bad, "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}");
        e = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(bad));
        assertTrue(e.getMessage().contains("model type Unigram is not supported"), e.getMessage());
        Path missing = dir.resolve("missing");
        e = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(missing));
        assertEquals(missing + ": no such file", e.getMessage());
    }
}
