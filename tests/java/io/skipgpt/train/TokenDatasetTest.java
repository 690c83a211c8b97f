package io.skipgpt.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.tokenizer.Tokenizer;
import io.skipgpt.train.TokenDataset.Batch;
import io.skipgpt.train.TokenDataset.Mode;
import io.skipgpt.train.TokenDataset.Options;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenDatasetTest {
    /** One token per character; BOS is '^' so examples read as strings. */
    static final class CharTokenizer implements Tokenizer {
        @Override
        public int[] encode(String text) {
            return text.chars().toArray();
        }

        @Override
        public String decode(int[] ids) {
            return new String(ids, 0, ids.length);
        }

        @Override
        public int bos() {
            return '^';
        }

        @Override
        public int eos() {
            return '$';
        }

        @Override
        public int vocabSize() {
            return 65536;
        }

        @Override
        public String describe() {
            return "one token per character";
        }
    }

    private static final Tokenizer TOKENIZER = new CharTokenizer();

    @TempDir
    Path dir;

    @Test
    void documentsAreCutWithOneTokenOverlap() throws IOException {
        Path a = write("a.txt", "abcdefghij\n<|endoftext|>\n xy \n");
        Path b = write("b.txt", "z");
        TokenDataset data = TokenDataset.load(List.of(a, b), TOKENIZER, new Options(Mode.DOCUMENTS, 4, 0, 1));
        assertEquals(5, data.trainSize());
        assertEquals(0, data.heldOutSize());
        List<String> examples = examples(data.nextBatch(5));
        Collections.sort(examples);
        // [BOS] + document, windows of seqLen + 1 = 5 stepping by 4: each char after a BOS is a target once.
        assertEquals(List.of("^abcd", "^xy", "^z", "defgh", "hij"), examples);
    }

    @Test
    void documentsModePredictsEveryTokenExactlyOnce() throws IOException {
        Rng rng = new Rng(11);
        List<Path> files = new ArrayList<>();
        List<Integer> expected = new ArrayList<>();
        for (int f = 0; f < 3; f++) {
            StringBuilder text = new StringBuilder();
            for (int d = 0; d < 20; d++) {
                String doc = randomWord(rng, 1 + rng.nextInt(40));
                doc.chars().forEach(expected::add);
                text.append(doc).append("\n<|endoftext|>\n");
            }
            files.add(write("f" + f + ".txt", text.toString()));
        }
        int seqLen = 7;
        TokenDataset data = TokenDataset.load(files, TOKENIZER, new Options(Mode.DOCUMENTS, seqLen, 0, 5));
        Batch epoch = data.nextBatch(data.trainSize());
        List<Integer> predicted = new ArrayList<>();
        for (int i = 0; i < epoch.size(); i++) {
            assertTrue(epoch.inputs()[i].length >= 1 && epoch.inputs()[i].length <= seqLen);
            assertEquals(epoch.inputs()[i].length, epoch.targets()[i].length);
            for (int t : epoch.targets()[i]) predicted.add(t);
        }
        assertEquals(expected.size(), epoch.predictedTokens());
        Collections.sort(expected);
        Collections.sort(predicted);
        assertEquals(expected, predicted);
        assertEquals(new TokenDataset.Cursor(1, 0), data.cursor());
    }

    @Test
    void packedModeCutsFullWindowsAcrossDocumentsAndFiles() throws IOException {
        Path a = write("a.txt", "abcdefghij");
        Path b = write("b.txt", "xyz");
        TokenDataset data = TokenDataset.load(List.of(a, b), TOKENIZER, new Options(Mode.PACKED, 4, 0, 1));
        // Stream ^abcdefghij^xyz: windows at 0, 4, 8; the tail "xyz" would leave 2 targets and is dropped.
        Batch batch = data.nextBatch(3);
        List<String> examples = examples(batch);
        Collections.sort(examples);
        assertEquals(List.of("^abcd", "defgh", "hij^x"), examples);
        assertArrayEquals(new int[] {4, 4, 4}, batch.lengths());
        assertEquals(12, batch.predictedTokens());
        int i = examples(batch).indexOf("hij^x");
        assertArrayEquals("hij^".chars().toArray(), batch.inputs()[i]);
        assertArrayEquals("ij^x".chars().toArray(), batch.targets()[i]);
    }

    @Test
    void shufflingIsDeterministicBySeedAndEachEpochIsAPermutation() throws IOException {
        Path file = write("corpus.txt", numberedText(60));
        TokenDataset a = TokenDataset.load(List.of(file), TOKENIZER, new Options(Mode.PACKED, 8, 0, 42));
        TokenDataset b = TokenDataset.load(List.of(file), TOKENIZER, new Options(Mode.PACKED, 8, 0, 42));
        TokenDataset c = TokenDataset.load(List.of(file), TOKENIZER, new Options(Mode.PACKED, 8, 0, 43));
        int n = a.trainSize();
        List<String> firstEpoch = examples(a.nextBatch(n));
        assertEquals(firstEpoch, examples(b.nextBatch(n)));
        assertNotEquals(firstEpoch, examples(c.nextBatch(n)));
        List<String> secondEpoch = examples(a.nextBatch(n));
        assertNotEquals(firstEpoch, secondEpoch, "each epoch has its own order");
        List<String> sorted1 = new ArrayList<>(firstEpoch);
        List<String> sorted2 = new ArrayList<>(secondEpoch);
        Collections.sort(sorted1);
        Collections.sort(sorted2);
        assertEquals(sorted1, sorted2);
        assertEquals(n, new HashSet<>(firstEpoch).size(), "numbered text makes every window unique");
    }

    @Test
    void heldOutExamplesAreDisjointFromTrainingAndChosenBySeed() throws IOException {
        Path file = write("corpus.txt", numberedText(60));
        TokenDataset all = TokenDataset.load(List.of(file), TOKENIZER, new Options(Mode.PACKED, 8, 0, 7));
        TokenDataset data = TokenDataset.load(List.of(file), TOKENIZER, new Options(Mode.PACKED, 8, 0.2, 7));
        int n = all.trainSize();
        assertEquals(Math.round(0.2 * n), data.heldOutSize());
        assertEquals(n, data.trainSize() + data.heldOutSize());
        Set<String> heldOut = new HashSet<>(whole(data.heldOut()));
        Set<String> training = new HashSet<>();
        for (int e = 0; e < 3; e++) training.addAll(examples(data.nextBatch(data.trainSize())));
        assertEquals(data.trainSize(), training.size());
        for (String h : heldOut) assertFalse(training.contains(h), "held-out example " + h + " served for training");
        Set<String> union = new HashSet<>(training);
        union.addAll(heldOut);
        assertEquals(new HashSet<>(examples(all.nextBatch(n))), union);

        TokenDataset again = TokenDataset.load(List.of(file), TOKENIZER, new Options(Mode.PACKED, 8, 0.2, 7));
        assertEquals(whole(data.heldOut()), whole(again.heldOut()));
        assertEquals(data.fingerprint(), again.fingerprint());
        TokenDataset otherSeed = TokenDataset.load(List.of(file), TOKENIZER, new Options(Mode.PACKED, 8, 0.2, 8));
        assertNotEquals(heldOut, new HashSet<>(whole(otherSeed.heldOut())));
        assertNotEquals(data.fingerprint(), otherSeed.fingerprint());
    }

    @Test
    void holdOutKeepsAtLeastOneOfTwoAndNeverTheOnlyExample() throws IOException {
        Path two = write("two.txt", "ab\n<|endoftext|>\ncd");
        TokenDataset data = TokenDataset.load(List.of(two), TOKENIZER, new Options(Mode.DOCUMENTS, 8, 0.01, 1));
        assertEquals(1, data.heldOutSize());
        assertEquals(1, data.trainSize());
        Path one = write("one.txt", "ab");
        TokenDataset single = TokenDataset.load(List.of(one), TOKENIZER, new Options(Mode.DOCUMENTS, 8, 0.5, 1));
        assertEquals(0, single.heldOutSize());
        assertEquals(0, single.heldOut().size());
        assertEquals(1, single.trainSize());
    }

    @Test
    void resumingFromASavedCursorGivesTheSameBatches() throws IOException {
        Path file = write("corpus.txt", numberedText(40));
        Options options = new Options(Mode.DOCUMENTS, 6, 0.1, 99);
        TokenDataset uninterrupted = TokenDataset.load(List.of(file), TOKENIZER, options);
        int n = uninterrupted.trainSize();
        // Stop at several points, the last one inside the second epoch; each run then crosses epoch boundaries.
        for (int stopAfter : new int[] {0, 1, 4, n / 3, n / 3 + 1}) {
            TokenDataset first = TokenDataset.load(List.of(file), TOKENIZER, options);
            TokenDataset reference = TokenDataset.load(List.of(file), TOKENIZER, options);
            for (int i = 0; i < stopAfter; i++) {
                first.nextBatch(3);
                reference.nextBatch(3);
            }
            TokenDataset.Cursor saved = first.cursor();
            TokenDataset resumed = TokenDataset.load(List.of(file), TOKENIZER, options);
            resumed.seek(saved);
            for (int i = 0; i < 2 * n / 3 + 2; i++) {
                assertEquals(examples(reference.nextBatch(3)), examples(resumed.nextBatch(3)), "after " + stopAfter + " batches, batch " + i);
            }
            assertEquals(reference.cursor(), resumed.cursor());
        }
        TokenDataset atBoundary = TokenDataset.load(List.of(file), TOKENIZER, options);
        atBoundary.nextBatch(n);
        assertEquals(new TokenDataset.Cursor(1, 0), atBoundary.cursor());
        assertThrows(IllegalArgumentException.class, () -> atBoundary.seek(new TokenDataset.Cursor(0, n)));
    }

    @Test
    void clearErrorsForBadFiles() throws IOException {
        Path missing = dir.resolve("missing.txt");
        NoSuchFileException e1 = assertThrows(NoSuchFileException.class,
                () -> TokenDataset.load(List.of(missing), TOKENIZER, new Options(Mode.DOCUMENTS, 4, 1)));
        assertTrue(e1.getMessage().contains("missing.txt"), e1.getMessage());

        Path empty = write("empty.txt", " \n\n");
        IOException e2 = assertThrows(IOException.class,
                () -> TokenDataset.load(List.of(empty), TOKENIZER, new Options(Mode.DOCUMENTS, 4, 1)));
        assertEquals(empty + ": empty file", e2.getMessage());

        Path separators = write("separators.txt", "<|endoftext|>\n<|endoftext|>\n");
        IOException e3 = assertThrows(IOException.class,
                () -> TokenDataset.load(List.of(separators), TOKENIZER, new Options(Mode.DOCUMENTS, 4, 1)));
        assertEquals(separators + ": no tokens in this file", e3.getMessage());

        Path small = write("small.txt", "abc");
        IOException e4 = assertThrows(IOException.class,
                () -> TokenDataset.load(List.of(small), TOKENIZER, new Options(Mode.PACKED, 4, 1)));
        assertTrue(e4.getMessage().contains("small.txt") && e4.getMessage().contains("4 tokens"), e4.getMessage());

        Path binary = dir.resolve("binary.txt");
        Files.write(binary, new byte[] {(byte) 0xff, (byte) 0xfe, 'a'});
        IOException e5 = assertThrows(IOException.class,
                () -> TokenDataset.load(List.of(binary), TOKENIZER, new Options(Mode.PACKED, 4, 1)));
        assertEquals(binary + ": not UTF-8 text", e5.getMessage());
    }

    @Test
    void loadsAMegabyteOfText() throws IOException {
        // One encode call per document: a megabyte in 2,000 documents loads in well under a second.
        StringBuilder text = new StringBuilder();
        Rng rng = new Rng(3);
        while (text.length() < 1_000_000) text.append(randomWord(rng, 500)).append("\n<|endoftext|>\n");
        Path file = write("big.txt", text.toString());
        TokenDataset data = TokenDataset.load(List.of(file), TOKENIZER, new Options(Mode.PACKED, 256, 2));
        assertTrue(data.trainSize() > 3500, data.toString());
    }

    private Path write(String name, String text) throws IOException {
        return Files.writeString(dir.resolve(name), text, StandardCharsets.UTF_8);
    }

    // Whole examples (heldOut) as strings, as examples(Batch) writes a batch's.
    private static List<String> whole(List<int[]> examples) {
        List<String> out = new ArrayList<>();
        for (int[] e : examples) out.add(new String(e, 0, e.length));
        return out;
    }

    private static List<String> examples(Batch batch) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < batch.size(); i++) {
            int[] in = batch.inputs()[i];
            int[] t = batch.targets()[i];
            assertArrayEquals(java.util.Arrays.copyOfRange(in, 1, in.length), java.util.Arrays.copyOfRange(t, 0, t.length - 1),
                    "targets are the inputs shifted by one");
            out.add(new String(in, 0, in.length) + (char) t[t.length - 1]);
        }
        return out;
    }

    private static String randomWord(Rng rng, int length) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < length; i++) s.append((char) ('a' + rng.nextInt(26)));
        return s.toString();
    }

    /** Documents "doc 0: ...", "doc 1: ...": distinct enough that no two windows are equal. */
    private static String numberedText(int documents) {
        StringBuilder text = new StringBuilder();
        for (int d = 0; d < documents; d++) text.append("doc ").append(d).append(": item ").append(d * 7).append("\n<|endoftext|>\n");
        return text.toString();
    }
}
