package io.skipgpt.train;

import io.skipgpt.eval.Perplexity;
import io.skipgpt.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * Training sequences cut from text files, served in a seeded order that can be resumed exactly.
 *
 * <p>Files are split into documents as perplexity splits them ({@link Perplexity#documents}), and each document
 * becomes {@code [BOS] + tokens}. An <em>example</em> is a run of at most {@code seqLen + 1} ids: its inputs are all
 * but the last, its targets all but the first. Consecutive examples overlap by one id, so every id after a BOS is a
 * target exactly once:
 * <ul>
 * <li>{@link Mode#DOCUMENTS}: each document is cut on its own; its last example may be shorter (at least 2 ids).
 * <li>{@link Mode#PACKED}: all documents of all files are concatenated into one stream and cut into full windows of
 *     {@code seqLen + 1}; the tail that does not fill a window (fewer than {@code seqLen} targets) is dropped.
 * </ul>
 *
 * <p>A seeded fraction of the examples is held out for evaluation and never served by {@link #nextBatch}. The others
 * are served epoch after epoch, each epoch in its own permutation derived from (seed, epoch), so the stream is a
 * function of (files, tokenizer, options) and the {@link Cursor}: restoring a saved cursor reproduces the batches
 * an uninterrupted run would have seen.
 */
public final class TokenDataset {
    public enum Mode { DOCUMENTS, PACKED }

    /** How examples are cut and split. {@code holdout} is the fraction of examples kept for evaluation. */
    public record Options(Mode mode, int seqLen, double holdout, long seed) {
        public static final double DEFAULT_HOLDOUT = 0.05;

        public Options {
            if (mode == null) throw new IllegalArgumentException("a dataset mode is required");
            if (seqLen < 1) throw new IllegalArgumentException("sequence length must be at least 1, got " + seqLen);
            if (!(holdout >= 0 && holdout < 1)) throw new IllegalArgumentException("holdout fraction must be in [0, 1), got " + holdout);
        }

        public Options(Mode mode, int seqLen, long seed) {
            this(mode, seqLen, DEFAULT_HOLDOUT, seed);
        }
    }

    /** Where the training stream stands: completed epochs and the next example within the current one. */
    public record Cursor(long epoch, int position) {
        public Cursor {
            if (epoch < 0 || position < 0) throw new IllegalArgumentException("bad dataset cursor (" + epoch + ", " + position + ")");
        }
    }

    /** Sequences of possibly different lengths; {@code targets[i][j]} is the id that follows {@code inputs[i][j]}. */
    public record Batch(int[][] inputs, int[][] targets) {
        public int size() {
            return inputs.length;
        }

        public int[] lengths() {
            int[] lengths = new int[inputs.length];
            for (int i = 0; i < inputs.length; i++) lengths[i] = inputs[i].length;
            return lengths;
        }

        /** The number of targets: the denominator of a mean per-token loss. */
        public long predictedTokens() {
            long n = 0;
            for (int[] t : targets) n += t.length;
            return n;
        }
    }

    /** Key of the hold-out draw among the seed's derived streams; epochs use keys 0, 1, 2, ... */
    private static final long HOLDOUT_KEY = -1;

    private final Options options;
    private final List<int[]> train;
    private final List<int[]> heldOut;
    private final long fingerprint; // of the examples, which never change: computed once
    private long epoch;
    private int position;
    private int[] order; // permutation of the current epoch, made when first needed

    private TokenDataset(Options options, List<int[]> train, List<int[]> heldOut) {
        this.options = options;
        this.train = train;
        this.heldOut = heldOut;
        this.fingerprint = fingerprint(train, heldOut);
    }

    /** Reads, tokenises (one {@code encode} call per document) and cuts the files, in the order given. */
    public static TokenDataset load(List<Path> files, Tokenizer tokenizer, Options options) throws IOException {
        if (files.isEmpty()) throw new IllegalArgumentException("no text files given");
        List<int[]> documents = new ArrayList<>();
        long tokens = 0;
        for (Path file : files) {
            int before = documents.size();
            for (String doc : Perplexity.documents(readText(file))) {
                int[] encoded = tokenizer.encode(doc);
                if (encoded.length == 0) continue;
                int[] ids = tokenizer.withBos(encoded);
                documents.add(ids);
                tokens += ids.length;
            }
            if (documents.size() == before) throw new IOException(file + ": no tokens in this file");
        }
        List<int[]> examples = options.mode() == Mode.DOCUMENTS
                ? cutDocuments(documents, options.seqLen())
                : cutPacked(documents, options.seqLen());
        if (examples.isEmpty()) {
            throw new IOException(files + ": " + tokens + " tokens in all, fewer than the " + (options.seqLen() + 1)
                    + " one packed window of sequence length " + options.seqLen() + " needs");
        }
        return split(examples, options);
    }

    private static String readText(Path file) throws IOException {
        if (!Files.exists(file)) throw new NoSuchFileException(file.toString(), null, "no such file");
        if (!Files.isRegularFile(file)) throw new IOException(file + ": not a regular file");
        String text;
        try {
            text = Files.readString(file);
        } catch (CharacterCodingException e) {
            throw new IOException(file + ": not UTF-8 text", e);
        }
        if (text.isBlank()) throw new IOException(file + ": empty file");
        return text;
    }

    /** Windows of seqLen + 1 ids stepping by seqLen within each document; the last one may be short. */
    private static List<int[]> cutDocuments(List<int[]> documents, int seqLen) {
        List<int[]> examples = new ArrayList<>();
        for (int[] ids : documents) {
            for (int start = 0; start < ids.length - 1; start += seqLen) {
                examples.add(Arrays.copyOfRange(ids, start, Math.min(start + seqLen + 1, ids.length)));
            }
        }
        return examples;
    }

    /** Full windows of seqLen + 1 ids stepping by seqLen over the concatenation of all documents. */
    private static List<int[]> cutPacked(List<int[]> documents, int seqLen) {
        long total = 0;
        for (int[] d : documents) total += d.length;
        if (total > Integer.MAX_VALUE) throw new IllegalArgumentException("more than 2^31 tokens: too many for one packed stream");
        int[] stream = new int[(int) total];
        int at = 0;
        for (int[] d : documents) {
            System.arraycopy(d, 0, stream, at, d.length);
            at += d.length;
        }
        List<int[]> examples = new ArrayList<>();
        for (int start = 0; start + seqLen + 1 <= stream.length; start += seqLen) {
            examples.add(Arrays.copyOfRange(stream, start, start + seqLen + 1));
        }
        return examples;
    }

    /**
     * Holds out round(holdout * n) examples drawn by the seed: at least one when there are two or more examples and
     * the fraction is not 0, never all of them. Both parts keep corpus order.
     */
    private static TokenDataset split(List<int[]> examples, Options options) {
        int n = examples.size();
        int count = 0;
        if (options.holdout() > 0 && n >= 2) count = (int) Math.max(1, Math.min(n - 1, Math.round(options.holdout() * n)));
        int[] draw = new int[n];
        for (int i = 0; i < n; i++) draw[i] = i;
        Rng.derived(options.seed(), HOLDOUT_KEY).shuffle(draw);
        boolean[] held = new boolean[n];
        for (int i = 0; i < count; i++) held[draw[i]] = true;
        List<int[]> train = new ArrayList<>(n - count);
        List<int[]> heldOut = new ArrayList<>(count);
        for (int i = 0; i < n; i++) (held[i] ? heldOut : train).add(examples.get(i));
        return new TokenDataset(options, train, heldOut);
    }

    public Options options() {
        return options;
    }

    public int trainSize() {
        return train.size();
    }

    public int heldOutSize() {
        return heldOut.size();
    }

    /** The next {@code batch} training examples; an epoch that ends inside a batch continues into the next one. */
    public Batch nextBatch(int batch) {
        if (batch < 1) throw new IllegalArgumentException("batch size must be at least 1, got " + batch);
        List<int[]> picked = new ArrayList<>(batch);
        for (int i = 0; i < batch; i++) {
            if (order == null) order = epochOrder(epoch);
            picked.add(train.get(order[position]));
            if (++position == train.size()) {
                epoch++;
                position = 0;
                order = null;
            }
        }
        return batchOf(picked);
    }

    /**
     * The first {@code count} training examples in corpus order (calibration), whole (inputs and last target), as
     * evaluation reads them; the stream's cursor does not move. Read-only.
     */
    public List<int[]> trainHead(int count) {
        return Collections.unmodifiableList(train.subList(0, Math.min(count, train.size())));
    }

    /** All held-out examples, whole, in corpus order (empty when nothing is held out). Read-only. */
    public List<int[]> heldOut() {
        return Collections.unmodifiableList(heldOut);
    }

    public Cursor cursor() {
        return new Cursor(epoch, position);
    }

    /** Continues the training stream from a saved cursor of a dataset loaded with the same files and options. */
    public void seek(Cursor cursor) {
        if (cursor.position() >= train.size()) {
            throw new IllegalArgumentException("cursor position " + cursor.position() + " is past the " + train.size() + " training examples");
        }
        epoch = cursor.epoch();
        position = cursor.position();
        order = null;
    }

    /**
     * A hash of the examples and the split, to store with a checkpoint: a resumed run whose files or tokenizer
     * changed would otherwise continue silently on different data.
     */
    public long fingerprint() {
        return fingerprint;
    }

    private static long fingerprint(List<int[]> train, List<int[]> heldOut) {
        long h = 0xCBF29CE484222325L; // FNV-1a over the lengths and ids of both parts
        for (List<int[]> part : List.of(train, heldOut)) {
            h = (h ^ part.size()) * 0x100000001B3L;
            for (int[] example : part) {
                h = (h ^ example.length) * 0x100000001B3L;
                for (int id : example) h = (h ^ id) * 0x100000001B3L;
            }
        }
        return h;
    }

    private int[] epochOrder(long epoch) {
        int[] order = new int[train.size()];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Rng.derived(options.seed(), epoch).shuffle(order);
        return order;
    }

    private static Batch batchOf(List<int[]> examples) {
        int[][] inputs = new int[examples.size()][];
        int[][] targets = new int[examples.size()][];
        for (int i = 0; i < examples.size(); i++) {
            int[] e = examples.get(i);
            inputs[i] = Arrays.copyOfRange(e, 0, e.length - 1);
            targets[i] = Arrays.copyOfRange(e, 1, e.length);
        }
        return new Batch(inputs, targets);
    }

    @Override
    public String toString() {
        return "TokenDataset[" + options.mode() + ", seqLen " + options.seqLen() + ", " + train.size() + " training and "
                + heldOut.size() + " held-out examples]";
    }
}
