package io.skipgpt.io;

import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.tokenizer.Llama2cTokenizer;
import io.skipgpt.tokenizer.SentencePieceBpe;
import io.skipgpt.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * llama2.c's legacy checkpoint: a header of 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size, seq_len; a negative vocab_size means the classifier is not shared), then float32 tensors grouped
 * by kind across layers: token_embedding [vocab, dim], rms_att [L, dim], wq [L, dim, dim], wk [L, kvdim, dim],
 * wv [L, kvdim, dim], wo [L, dim, dim], rms_ffn [L, dim], w1 (gate) [L, hidden, dim], w2 (down) [L, dim, hidden],
 * w3 (up) [L, hidden, dim], rms_final [dim], freq_cis_real and freq_cis_imag [seq_len, head_dim/2] (unused), and
 * wcls [vocab, dim] when unshared. Q and K are in adjacent-pair RoPE order. The format stores neither RoPE theta
 * nor the norm epsilon: they are 10000 and 1e-5.
 */
public final class Llama2cCheckpoint {
    static final float THETA = 10000f;
    static final float EPS = 1e-5f;
    private static final int HEADER_BYTES = 7 * 4;
    /** Sizes beyond this are not a real header (and would overflow the size arithmetic). */
    private static final int MAX_SIZE = 1 << 20;
    /** The first int32 of llama2.c's newer (versioned) export formats: "ak42". */
    private static final int VERSIONED_MAGIC = 0x616b3432;

    private Llama2cCheckpoint() {}

    /** The slots in file order: each is stored for all layers before the next one. */
    private static final WeightSlot[] FILE_ORDER = {WeightSlot.EMBEDDING, WeightSlot.ATTN_NORM, WeightSlot.WQ,
        WeightSlot.WK, WeightSlot.WV, WeightSlot.WO, WeightSlot.FFN_NORM, WeightSlot.GATE, WeightSlot.DOWN,
        WeightSlot.UP, WeightSlot.OUTPUT_NORM};

    /**
     * Reads a checkpoint. The tokenizer lives in another file: {@code tokenizer} when not null, else the one
     * llama2.c file beside the checkpoint (see {@link #findTokenizer}).
     */
    static LoadedModel read(Path file, Tokenizer tokenizer) throws ModelFormatException {
        try (MappedFile f = MappedFile.open(file)) {
            MappedFile.Cursor c = f.cursor(0);
            if (f.size >= 4 && c.i32("magic") == VERSIONED_MAGIC) {
                throw new ModelFormatException(file, "llama2.c versioned export (magic \"ak42\") is not supported,"
                        + " only the legacy format");
            }
            c.seek(0);
            int[] h = new int[7];
            for (int i = 0; i < 7; i++) h[i] = c.i32("header");
            boolean shared = h[5] > 0;
            int vocab = Math.abs(h[5]);
            String header = String.format("dim=%d hidden_dim=%d n_layers=%d n_heads=%d n_kv_heads=%d vocab_size=%d"
                    + " seq_len=%d", h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
            LlamaConfig config;
            try {
                for (int v : new int[] {h[0], h[1], h[2], h[3], h[4], vocab, h[6]}) {
                    if (v <= 0 || v > MAX_SIZE) throw new IllegalArgumentException("sizes out of range");
                }
                config = new LlamaConfig(h[0], h[1], h[2], h[3], h[4], vocab, h[6], THETA, EPS, shared);
            } catch (IllegalArgumentException e) {
                throw new ModelFormatException(file, "not a llama2.c checkpoint: implausible header (" + header
                        + "): " + e.getMessage(), e);
            }
            long expected = expectedSize(config, !shared);
            if (f.size < expected) {
                throw new ModelFormatException(file, "truncated: the header (" + header + ") needs " + expected
                        + " bytes but the file has " + f.size);
            }
            if (f.size > expected) {
                throw new ModelFormatException(file, "unexpected trailing bytes: the header (" + header + ") needs "
                        + expected + " bytes but the file has " + f.size);
            }
            TensorCatalog catalog = catalog(f, config, !shared);
            if (!shared && catalog.identical(name(WeightSlot.OUTPUT, 0), name(WeightSlot.EMBEDDING, 0))) {
                config = withTied(config);
            }
            Tokenizer tok = tokenizer != null ? tokenizer : findTokenizer(file, vocab);
            LlamaWeights w = catalog.readWeights(config, Llama2cCheckpoint::name, false);
            return new LoadedModel(file, "llama2.c", catalog.storedDtype(), config, w, tok);
        }
    }

    /**
     * The tokenizer beside a checkpoint: tokenizer.bin or tok*.bin. With several, the one whose vocabulary
     * matches the model's; without exactly one such, an error that asks for an explicit tokenizer.
     */
    static SentencePieceBpe findTokenizer(Path checkpoint, int vocabSize) throws ModelFormatException {
        Path dir = checkpoint.toAbsolutePath().getParent();
        List<Path> candidates = new ArrayList<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "tok*.bin")) {
            for (Path p : files) {
                if (Files.isRegularFile(p) && !p.getFileName().equals(checkpoint.getFileName())) candidates.add(p);
            }
        } catch (IOException e) {
            throw new ModelFormatException(checkpoint, "cannot list the directory for a tokenizer: " + e, e);
        }
        if (candidates.isEmpty()) {
            throw new ModelFormatException(checkpoint, "missing tokenizer: no tokenizer.bin or tok*.bin beside the"
                    + " checkpoint (pass one explicitly)");
        }
        Collections.sort(candidates);
        if (candidates.size() == 1) return Llama2cTokenizer.read(candidates.get(0));
        List<SentencePieceBpe> matching = new ArrayList<>();
        for (Path p : candidates) {
            SentencePieceBpe t = Llama2cTokenizer.read(p);
            if (t.vocabSize() == vocabSize) matching.add(t);
        }
        if (matching.size() != 1) {
            throw new ModelFormatException(checkpoint, "ambiguous tokenizer: " + matching.size() + " of "
                    + candidates + " have the model's " + vocabSize + " tokens (pass one explicitly)");
        }
        return matching.get(0);
    }

    private static LlamaConfig withTied(LlamaConfig c) {
        return new LlamaConfig(c.dim(), c.hiddenDim(), c.nLayers(), c.nHeads(), c.nKvHeads(), c.vocabSize(),
                c.contextLength(), c.ropeTheta(), c.normEps(), true);
    }

    private static String name(WeightSlot slot, int layer) {
        return slot.perLayer ? slot + "[" + layer + "]" : slot.toString();
    }

    private static long elements(int[] shape) {
        long n = 1;
        for (int s : shape) n *= s;
        return n;
    }

    /** The unused RoPE tables: cos and sin of [seq_len, head_dim/2] each. */
    private static long freqElements(LlamaConfig c) {
        return 2L * c.contextLength() * (c.headDim() / 2);
    }

    private static long expectedSize(LlamaConfig c, boolean unshared) {
        long floats = freqElements(c);
        for (WeightSlot s : FILE_ORDER) floats += elements(s.shape(c)) * (s.perLayer ? c.nLayers() : 1);
        if (unshared) floats += elements(WeightSlot.OUTPUT.shape(c));
        return HEADER_BYTES + 4 * floats;
    }

    private static TensorCatalog catalog(MappedFile f, LlamaConfig c, boolean unshared) throws ModelFormatException {
        TensorCatalog catalog = new TensorCatalog(f.path);
        long offset = HEADER_BYTES;
        for (WeightSlot s : FILE_ORDER) {
            int[] shape = s.shape(c);
            long[] dims = Arrays.stream(shape).asLongStream().toArray();
            for (int layer = 0; layer < (s.perLayer ? c.nLayers() : 1); layer++) {
                catalog.add(new StoredTensor(name(s, layer), StorageType.F32, dims, f, offset));
                offset += 4 * elements(shape);
            }
        }
        offset += 4 * freqElements(c);
        if (unshared) {
            long[] dims = {c.vocabSize(), c.dim()};
            catalog.add(new StoredTensor(name(WeightSlot.OUTPUT, 0), StorageType.F32, dims, f, offset));
        }
        return catalog;
    }

    /**
     * Writes the legacy checkpoint (float32; RoPE tables computed for theta 10000). A tied model is written with
     * a shared classifier. The tokenizer is a separate file: write it beside with {@link Llama2cTokenizer#write}
     * (as tokenizer.bin) so that loading finds it. Throws when the model's theta or epsilon differ from what the
     * format implies.
     */
    public static void write(Path file, LoadedModel model) throws IOException {
        LlamaConfig c = model.config();
        LlamaWeights w = model.weights();
        if (c.ropeTheta() != THETA || c.normEps() != EPS) {
            throw new IllegalArgumentException("the llama2.c format implies RoPE theta 10000 and norm eps 1e-5;"
                    + " this model has theta " + c.ropeTheta() + " and eps " + c.normEps());
        }
        AtomicFiles.write(file, stream -> {
            LeOutput out = new LeOutput(stream);
            int[] header = {c.dim(), c.hiddenDim(), c.nLayers(), c.nHeads(), c.nKvHeads(),
                w.tied() ? c.vocabSize() : -c.vocabSize(), c.contextLength()};
            for (int v : header) out.i32(v);
            for (WeightSlot s : FILE_ORDER) {
                for (int layer = 0; layer < (s.perLayer ? c.nLayers() : 1); layer++) {
                    out.tensor(s.of(w, layer), StorageType.F32);
                }
            }
            // float32 arithmetic step by step, as llama2.c's exporter (PyTorch) computes them.
            int half = c.headDim() / 2;
            float[] freq = new float[half];
            for (int i = 0; i < half; i++) freq[i] = 1f / (float) Math.pow(THETA, (float) (2 * i) / c.headDim());
            for (boolean cos : new boolean[] {true, false}) {
                for (int pos = 0; pos < c.contextLength(); pos++) {
                    for (int i = 0; i < half; i++) {
                        float angle = pos * freq[i];
                        out.f32((float) (cos ? Math.cos(angle) : Math.sin(angle)));
                    }
                }
            }
            if (!w.tied()) out.tensor(w.output(), StorageType.F32);
        });
    }
}
