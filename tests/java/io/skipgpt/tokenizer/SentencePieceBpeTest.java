package io.skipgpt.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.skipgpt.io.TestData;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class SentencePieceBpeTest {
    /** A small vocabulary: controls, a few byte tokens, characters and merged pieces with chosen scores. */
    private static SentencePieceBpe small() {
        String[] pieces = {"<unk>", "<s>", "</s>", "<0x0A>", "<0xC3>", "<0xA9>", "▁", "a", "b", "ab", "ba", "▁a", "aba"};
        float[] scores = {0, 0, 0, 0, 0, 0, -10, -11, -12, -1, -1, -3, -0.5f};
        return new SentencePieceBpe(pieces, scores, 1, 2);
    }

    @Test
    void mergesHighestScoreFirstAndLeftmostOnTies() {
        // "▁abab": ab (pos 1) and ba (pos 2) and ab (pos 3) tie at -1 -> leftmost ab; then "aba" (-0.5) beats ab.
        assertArrayEquals(new int[] {6, 12, 8}, small().encode("abab"));
        // "▁ba": ▁a is not adjacent-formable ("▁b" is no piece) so ba merges.
        assertArrayEquals(new int[] {6, 10}, small().encode("ba"));
    }

    @Test
    void unknownCharactersFallBackToBytesOrUnk() {
        SentencePieceBpe t = small();
        // é is C3 A9: both byte tokens exist. \n is 0A. 'z' has no piece and its byte has no token: <unk>.
        assertArrayEquals(new int[] {11, 4, 5, 3, 0}, t.encode("aé\nz"));
        assertEquals("aé\n", t.decode(t.encode("aé\nz"))); // <unk> decodes to nothing
    }

    @Test
    void emptyTextHasNoTokens() {
        assertArrayEquals(new int[0], small().encode(""));
        assertEquals("", small().decode(new int[0]));
    }

    @Test
    void decodeDropsTheFirstLeadingSpaceAndSkipsControls() {
        SentencePieceBpe t = small();
        assertEquals("a a", t.decode(new int[] {1, 11, 11, 2}));
        assertEquals("aé", t.decode(new int[] {7, 4, 5})); // bytes are accumulated, then decoded as UTF-8
        assertEquals("  ab", t.decode(new int[] {6, 6, 6, 9}));
        assertThrows(IllegalArgumentException.class, () -> t.decode(new int[] {99}));
    }

    /** llama2.c's encoder, verbatim in spirit: rescan all pairs after every merge (O(n^2)), first best wins. */
    private static int[] naive(String[] pieces, float[] scores, String text) {
        List<Integer> ids = new ArrayList<>();
        String s = "▁" + text.replace(' ', '▁');
        java.util.Map<String, Integer> index = new java.util.HashMap<>();
        for (int i = 3; i < pieces.length; i++) index.putIfAbsent(pieces[i], i);
        s.codePoints().forEach(cp -> ids.add(index.getOrDefault(new String(Character.toChars(cp)), 0)));
        while (true) {
            float best = -1e10f;
            int bestIdx = -1, bestId = -1;
            for (int i = 0; i + 1 < ids.size(); i++) {
                Integer id = index.get(pieces[ids.get(i)] + pieces[ids.get(i + 1)]);
                if (id != null && scores[id] > best) {
                    best = scores[id];
                    bestIdx = i;
                    bestId = id;
                }
            }
            if (bestIdx < 0) break;
            ids.set(bestIdx, bestId);
            ids.remove(bestIdx + 1);
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    @Test
    void heapMergerMatchesTheQuadraticReference() {
        Random rnd = new Random(7);
        for (int round = 0; round < 20; round++) {
            // Random pieces over a 4-letter alphabet plus ▁, with random distinct-ish scores (ties included).
            List<String> pieces = new ArrayList<>(List.of("<unk>", "<s>", "</s>", "▁", "a", "b", "c", "d"));
            while (pieces.size() < 40) {
                StringBuilder p = new StringBuilder(rnd.nextInt(4) == 0 ? "▁" : "");
                for (int k = 0, n = 2 + rnd.nextInt(3); k < n; k++) p.append("abcd".charAt(rnd.nextInt(4)));
                if (!pieces.contains(p.toString())) pieces.add(p.toString());
            }
            float[] scores = new float[pieces.size()];
            for (int i = 3; i < scores.length; i++) scores[i] = -rnd.nextInt(30);
            String[] arr = pieces.toArray(String[]::new);
            SentencePieceBpe t = new SentencePieceBpe(arr, scores, 1, 2);
            for (int k = 0; k < 20; k++) {
                StringBuilder text = new StringBuilder();
                for (int n = rnd.nextInt(40); n > 0; n--) text.append("abcd ".charAt(rnd.nextInt(5)));
                String s = text.toString();
                int[] expected = s.isEmpty() ? new int[0] : naive(arr, scores, s);
                assertArrayEquals(expected, t.encode(s), "text \"" + s + "\"");
                assertEquals(s, t.decode(t.encode(s)));
            }
        }
    }

    @Test
    void goldenEncodingOfStories260KTokenizer() throws Exception {
        SentencePieceBpe t = Llama2cTokenizer.read(TestData.tok512());
        assertArrayEquals(new int[] {403, 407, 261, 378}, t.encode("Once upon a time"));
        assertEquals("Once upon a time", t.decode(new int[] {1, 403, 407, 261, 378}));
        // Ids from Hugging Face tokenizers 0.23.2 on the tokenizer.json TokenizerJson writes for tok512.bin.
        assertArrayEquals(new int[] {297, 412, 198, 178, 360, 280, 412, 431, 485, 410, 233, 154, 168, 233, 159, 175,
            410, 243, 162, 156, 133}, t.encode("naïve café 日本 🙂"));
        assertArrayEquals(new int[] {410, 410, 259, 424, 414, 410, 262, 427, 412, 331, 419, 410, 410},
                t.encode("  two  spaces  "));
        assertArrayEquals(new int[] {261, 13, 13, 430}, t.encode("a\n\nb"));
        assertEquals("SentencePiece BPE, 512 pieces, byte fallback", t.describe());
    }
}
