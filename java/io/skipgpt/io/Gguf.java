package io.skipgpt.io;

import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.tensor.Tensor;
import io.skipgpt.tokenizer.SentencePieceBpe;
import io.skipgpt.tokenizer.Tokenizer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * GGUF v2/v3 (llama.cpp's format): a header of typed metadata key/values and tensor descriptions, then aligned
 * tensor data. A tensor of dims [ne0, ne1] is row-major with ne0 fastest, so its row-major shape is [ne1, ne0]
 * and a linear weight [in, out] reads directly as W[out][in]. Q and K are already in adjacent-pair RoPE order.
 */
public final class Gguf {
    private static final int MAGIC = 0x46554747; // "GGUF" read as a little-endian int32
    private static final int DEFAULT_ALIGNMENT = 32;

    // Metadata value types.
    private static final int UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
            BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12;

    /** ggml tensor type ids by name, for reading and for naming the unsupported ones in errors. */
    private static final String[] GGML_TYPES = {"F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1",
        "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
        "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16"};

    private Gguf() {}

    /** The parsed header: metadata (Integer, Long, Float, Double, Boolean, String or List values) and tensors. */
    record Contents(Map<String, Object> metadata, TensorCatalog tensors) {}

    /**
     * Reads a GGUF LLaMA. {@code tokenizer}, when not null, replaces the one in the metadata (and is then the
     * only tokenizer needed).
     */
    static LoadedModel read(Path file, Tokenizer tokenizer) throws ModelFormatException {
        try (MappedFile f = MappedFile.open(file)) {
            Contents c = parse(f);
            Metadata meta = new Metadata(file, c.metadata());
            TensorCatalog tensors = c.tensors();
            LlamaConfig config = config(file, meta, tensors);
            Tokenizer tok = tokenizer != null ? tokenizer : tokenizer(file, meta);
            LlamaWeights w = tensors.readWeights(config, Gguf::tensorName, false);
            return new LoadedModel(file, "GGUF", tensors.storedDtype(), config, w, tok);
        }
    }

    /** The tokenizer in a GGUF's metadata, without reading its tensors. */
    static Tokenizer readTokenizer(Path file) throws ModelFormatException {
        try (MappedFile f = MappedFile.open(file)) {
            return tokenizer(file, new Metadata(file, parse(f).metadata()));
        }
    }

    static String tensorName(WeightSlot slot, int layer) {
        String blk = "blk." + layer + ".";
        return switch (slot) {
            case EMBEDDING -> "token_embd.weight";
            case OUTPUT_NORM -> "output_norm.weight";
            case OUTPUT -> "output.weight";
            case ATTN_NORM -> blk + "attn_norm.weight";
            case WQ -> blk + "attn_q.weight";
            case WK -> blk + "attn_k.weight";
            case WV -> blk + "attn_v.weight";
            case WO -> blk + "attn_output.weight";
            case FFN_NORM -> blk + "ffn_norm.weight";
            case GATE -> blk + "ffn_gate.weight";
            case UP -> blk + "ffn_up.weight";
            case DOWN -> blk + "ffn_down.weight";
        };
    }

    static Contents parse(MappedFile f) throws ModelFormatException {
        Path path = f.path;
        MappedFile.Cursor c = f.cursor(0);
        int magic = c.i32("magic");
        if (magic != MAGIC) {
            throw new ModelFormatException(path, "bad magic: expected \"GGUF\", found 0x"
                    + String.format("%08X", Integer.reverseBytes(magic)));
        }
        int version = c.i32("version");
        if (version != 2 && version != 3) {
            throw new ModelFormatException(path, "GGUF version " + version + " is not supported (only 2 and 3)");
        }
        long nTensors = c.i64("tensor count");
        long nKv = c.i64("metadata count");
        // Each tensor description takes at least 28 bytes and each key/value at least 13: bounds before loops.
        if (nTensors < 0 || nTensors > c.remaining() / 28 || nKv < 0 || nKv > c.remaining() / 13) {
            throw new ModelFormatException(path, "truncated or corrupt: the header's " + nTensors + " tensors and "
                    + nKv + " metadata entries cannot fit in " + f.size + " bytes");
        }
        Map<String, Object> meta = new LinkedHashMap<>();
        for (long i = 0; i < nKv; i++) {
            String key = string(c, "metadata key");
            meta.put(key, value(c, c.i32("type of " + key), key));
        }
        long alignment = DEFAULT_ALIGNMENT;
        Object a = meta.get("general.alignment");
        if (a != null) {
            if (!(a instanceof Number n) || n.longValue() <= 0 || Long.bitCount(n.longValue()) != 1) {
                throw new ModelFormatException(path, "general.alignment " + a + " is not a power of two");
            }
            alignment = n.longValue();
        }
        List<long[]> dims = new ArrayList<>();
        List<String> names = new ArrayList<>();
        List<StorageType> types = new ArrayList<>();
        List<Long> offsets = new ArrayList<>();
        for (long i = 0; i < nTensors; i++) {
            String name = string(c, "tensor name");
            int nd = c.i32("dimension count of " + name);
            if (nd < 1 || nd > 4) throw new ModelFormatException(path, "tensor '" + name + "' has " + nd + " dimensions");
            long[] shape = new long[nd];
            for (int d = 0; d < nd; d++) {
                // GGUF lists ne0 (fastest) first; row-major shape lists it last.
                long ne = c.i64("dimensions of " + name);
                if (ne <= 0 || ne > (1L << 40)) {
                    throw new ModelFormatException(path, "tensor '" + name + "' has dimension " + ne);
                }
                shape[nd - 1 - d] = ne;
            }
            int typeId = c.i32("type of " + name);
            names.add(name);
            dims.add(shape);
            types.add(storageType(path, name, typeId, shape[nd - 1]));
            offsets.add(c.i64("offset of " + name));
        }
        long dataStart = (c.position() + alignment - 1) / alignment * alignment;
        TensorCatalog catalog = new TensorCatalog(path);
        for (int i = 0; i < names.size(); i++) {
            StoredTensor t = new StoredTensor(names.get(i), types.get(i), dims.get(i), f, dataStart + offsets.get(i));
            long end = t.offset() + t.bytes();
            if (offsets.get(i) < 0 || t.bytes() < 0 || end > f.size || end < 0) {
                throw new ModelFormatException(path, "truncated: tensor '" + t.name() + "' needs bytes ["
                        + t.offset() + ", " + end + ") but the file has " + f.size);
            }
            catalog.add(t);
        }
        return new Contents(meta, catalog);
    }

    private static StorageType storageType(Path path, String name, int id, long rowLength)
            throws ModelFormatException {
        StorageType t = switch (id) {
            case 0 -> StorageType.F32;
            case 1 -> StorageType.F16;
            case 8 -> StorageType.Q8_0;
            case 30 -> StorageType.BF16;
            default -> null;
        };
        if (t == null) {
            String known = id >= 0 && id < GGML_TYPES.length ? GGML_TYPES[id] + " (" + id + ")" : null;
            throw new ModelFormatException(path, "tensor '" + name + "' has "
                    + (known != null ? "type " + known + ", which is not supported" : "unknown type " + id)
                    + " (supported: F32, F16, BF16, Q8_0)");
        }
        if (rowLength % t.blockElements != 0) {
            throw new ModelFormatException(path, "tensor '" + name + "': rows of " + rowLength
                    + " elements are not whole " + t + " blocks of " + t.blockElements);
        }
        return t;
    }

    private static String string(MappedFile.Cursor c, String what) throws ModelFormatException {
        return c.utf8(c.i64("length of " + what), what);
    }

    private static Object value(MappedFile.Cursor c, int type, String key) throws ModelFormatException {
        return switch (type) {
            case UINT8 -> c.u8(key);
            case INT8 -> (int) (byte) c.u8(key);
            case UINT16 -> c.i16(key) & 0xFFFF;
            case INT16 -> (int) c.i16(key);
            case UINT32 -> c.i32(key) & 0xFFFFFFFFL;
            case INT32 -> c.i32(key);
            case FLOAT32 -> c.f32(key);
            case BOOL -> c.u8(key) != 0;
            case STRING -> string(c, key);
            case UINT64, INT64 -> c.i64(key);
            case FLOAT64 -> c.f64(key);
            case ARRAY -> {
                int elementType = c.i32("element type of " + key);
                long n = c.i64("length of " + key);
                if (n < 0 || n > c.remaining()) {
                    throw new ModelFormatException(c.file(), "corrupt: array " + key + " claims " + n + " elements");
                }
                List<Object> list = new ArrayList<>((int) n);
                for (long i = 0; i < n; i++) list.add(value(c, elementType, key));
                yield list;
            }
            default -> throw new ModelFormatException(c.file(), "metadata key " + key + " has unknown type " + type);
        };
    }

    private static LlamaConfig config(Path file, Metadata m, TensorCatalog tensors) throws ModelFormatException {
        String arch = m.string("general.architecture");
        if (!arch.equals("llama")) {
            throw new ModelFormatException(file, "architecture '" + arch + "' is not supported (only llama)");
        }
        if (m.has("llama.rope.scaling.type") && !"none".equals(m.string("llama.rope.scaling.type"))
                || tensors.has("rope_freqs.weight")) {
            throw new ModelFormatException(file, "RoPE scaling is not supported");
        }
        int dim = m.integer("llama.embedding_length");
        int heads = m.integer("llama.attention.head_count");
        if (m.has("llama.rope.dimension_count") && heads > 0
                && m.integer("llama.rope.dimension_count") != dim / heads) {
            throw new ModelFormatException(file, "partial RoPE (llama.rope.dimension_count "
                    + m.integer("llama.rope.dimension_count") + " != head dim " + dim / heads + ") is not supported");
        }
        long[] embed = tensors.get(tensorName(WeightSlot.EMBEDDING, 0)).shape();
        if (embed.length != 2 || embed[1] != dim || embed[0] > Integer.MAX_VALUE) {
            throw new ModelFormatException(file, "tensor 'token_embd.weight' has shape "
                    + Arrays.toString(embed) + ", expected [vocab, " + dim + "]");
        }
        String out = tensorName(WeightSlot.OUTPUT, 0), emb = tensorName(WeightSlot.EMBEDDING, 0);
        boolean tied = !tensors.has(out) || tensors.identical(out, emb);
        try {
            return new LlamaConfig(dim, m.integer("llama.feed_forward_length"), m.integer("llama.block_count"),
                    heads, m.has("llama.attention.head_count_kv") ? m.integer("llama.attention.head_count_kv") : heads,
                    (int) embed[0], m.integer("llama.context_length"),
                    m.has("llama.rope.freq_base") ? m.real("llama.rope.freq_base") : 10000f,
                    m.real("llama.attention.layer_norm_rms_epsilon"), tied);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file, e.getMessage(), e);
        }
    }

    private static Tokenizer tokenizer(Path file, Metadata m) throws ModelFormatException {
        if (!m.has("tokenizer.ggml.tokens")) {
            throw new ModelFormatException(file, "missing tokenizer: no tokenizer.ggml.tokens in the metadata"
                    + " (pass a tokenizer explicitly)");
        }
        String model = m.has("tokenizer.ggml.model") ? m.string("tokenizer.ggml.model") : "llama";
        if (!model.equals("llama")) {
            throw new ModelFormatException(file, "tokenizer model '" + model + "' in the metadata is not supported"
                    + " (only llama/SentencePiece; pass a tokenizer.json explicitly)");
        }
        List<?> tokens = m.list("tokenizer.ggml.tokens");
        List<?> scores = m.list("tokenizer.ggml.scores");
        if (tokens.size() != scores.size()) {
            throw new ModelFormatException(file, "corrupt tokenizer: " + tokens.size() + " tokens but "
                    + scores.size() + " scores");
        }
        String[] pieces = new String[tokens.size()];
        float[] sc = new float[scores.size()];
        for (int i = 0; i < pieces.length; i++) {
            if (!(tokens.get(i) instanceof String s) || !(scores.get(i) instanceof Number n)) {
                throw new ModelFormatException(file, "corrupt tokenizer: entry " + i + " is not a string with a score");
            }
            pieces[i] = s;
            sc[i] = n.floatValue();
        }
        int bos = m.has("tokenizer.ggml.bos_token_id") ? m.integer("tokenizer.ggml.bos_token_id") : 1;
        int eos = m.has("tokenizer.ggml.eos_token_id") ? m.integer("tokenizer.ggml.eos_token_id") : 2;
        try {
            return new SentencePieceBpe(pieces, sc, bos, eos);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file, "corrupt tokenizer: " + e.getMessage(), e);
        }
    }

    /**
     * Writes a GGUF v3 file that this reader and llama.cpp read: F32 tensors, or with {@code f16} the matrices
     * in F16 (norms stay F32, as llama.cpp's converters do). A tied model gets no output tensor.
     */
    public static void write(Path file, LoadedModel model, boolean f16) throws IOException {
        if (!(model.tokenizer() instanceof SentencePieceBpe tok)) {
            throw new IllegalArgumentException("GGUF writing needs a SentencePiece tokenizer, not "
                    + model.tokenizer().describe());
        }
        LlamaConfig c = model.config();
        LlamaWeights w = model.weights();
        Kv kv = new Kv();
        kv.string("general.architecture", "llama");
        kv.string("general.name", model.path() == null ? "model" : String.valueOf(model.path().getFileName()));
        kv.u32("general.file_type", f16 ? 1 : 0); // LLAMA_FTYPE_ALL_F32 / MOSTLY_F16
        kv.u32("llama.context_length", c.contextLength());
        kv.u32("llama.embedding_length", c.dim());
        kv.u32("llama.block_count", c.nLayers());
        kv.u32("llama.feed_forward_length", c.hiddenDim());
        kv.u32("llama.attention.head_count", c.nHeads());
        kv.u32("llama.attention.head_count_kv", c.nKvHeads());
        kv.u32("llama.rope.dimension_count", c.headDim());
        kv.u32("llama.vocab_size", c.vocabSize());
        kv.f32("llama.rope.freq_base", c.ropeTheta());
        kv.f32("llama.attention.layer_norm_rms_epsilon", c.normEps());
        String[] pieces = tok.pieces();
        int[] types = new int[pieces.length];
        for (int i = 0; i < pieces.length; i++) {
            // llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte.
            types[i] = i == tok.unk() && pieces[i].equals("<unk>") ? 2 : tok.isControl(i) ? 3 : tok.isByte(i) ? 6 : 1;
        }
        kv.string("tokenizer.ggml.model", "llama");
        kv.strings("tokenizer.ggml.tokens", pieces);
        kv.floats("tokenizer.ggml.scores", tok.scores());
        kv.ints("tokenizer.ggml.token_type", types);
        kv.u32("tokenizer.ggml.bos_token_id", tok.bos());
        kv.u32("tokenizer.ggml.eos_token_id", tok.eos());
        kv.u32("tokenizer.ggml.unknown_token_id", tok.unk());
        kv.bool("tokenizer.ggml.add_bos_token", true);

        record Entry(String name, Tensor tensor, StorageType type, long offset) {}
        List<Entry> entries = new ArrayList<>();
        long offset = 0;
        for (WeightSlot.Entry e : WeightSlot.fileOrder(c.nLayers(), w.tied())) {
            Tensor t = e.slot().of(w, e.layer());
            StorageType type = f16 && t.rank() == 2 ? StorageType.F16 : StorageType.F32;
            entries.add(new Entry(tensorName(e.slot(), e.layer()), t, type, offset));
            offset = align(offset + type.bytesFor(t.size()), DEFAULT_ALIGNMENT);
        }
        AtomicFiles.write(file, stream -> {
            LeOutput out = new LeOutput(stream);
            out.i32(MAGIC);
            out.i32(3);
            out.i64(entries.size());
            out.i64(kv.count);
            out.bytes(kv.bytes.toByteArray());
            for (Entry e : entries) {
                out.ggufString(e.name());
                int[] shape = e.tensor().shape();
                out.i32(shape.length);
                for (int d = shape.length - 1; d >= 0; d--) out.i64(shape[d]);
                out.i32(e.type() == StorageType.F16 ? 1 : 0);
                out.i64(e.offset());
            }
            out.padTo(DEFAULT_ALIGNMENT);
            for (Entry e : entries) {
                out.tensor(e.tensor(), e.type());
                out.padTo(DEFAULT_ALIGNMENT);
            }
        });
    }

    private static long align(long n, long alignment) {
        return (n + alignment - 1) / alignment * alignment;
    }

    /** Metadata key/values being written, counted. */
    private static final class Kv {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        final LeOutput out = new LeOutput(bytes);
        int count;

        private void key(String key, int type) throws IOException {
            out.ggufString(key);
            out.i32(type);
            count++;
        }

        void u32(String key, int value) throws IOException {
            key(key, UINT32);
            out.i32(value);
        }

        void f32(String key, float value) throws IOException {
            key(key, FLOAT32);
            out.f32(value);
        }

        void bool(String key, boolean value) throws IOException {
            key(key, BOOL);
            out.u8(value ? 1 : 0);
        }

        void string(String key, String value) throws IOException {
            key(key, STRING);
            out.ggufString(value);
        }

        private void arrayOf(String key, int elementType, int length) throws IOException {
            key(key, ARRAY);
            out.i32(elementType);
            out.i64(length);
        }

        void strings(String key, String[] values) throws IOException {
            arrayOf(key, STRING, values.length);
            for (String v : values) out.ggufString(v);
        }

        void floats(String key, float[] values) throws IOException {
            arrayOf(key, FLOAT32, values.length);
            for (float v : values) out.f32(v);
        }

        void ints(String key, int[] values) throws IOException {
            arrayOf(key, INT32, values.length);
            for (int v : values) out.i32(v);
        }
    }

    /** Typed access to metadata, with errors naming the key. */
    private record Metadata(Path file, Map<String, Object> values) {
        boolean has(String key) {
            return values.containsKey(key);
        }

        private Object get(String key) throws ModelFormatException {
            Object v = values.get(key);
            if (v == null) throw new ModelFormatException(file, "missing metadata key " + key);
            return v;
        }

        int integer(String key) throws ModelFormatException {
            Object v = get(key);
            if ((v instanceof Integer || v instanceof Long) && ((Number) v).longValue() == ((Number) v).intValue()) {
                return ((Number) v).intValue();
            }
            throw new ModelFormatException(file, "metadata key " + key + " is " + describe(v) + ", expected an int");
        }

        float real(String key) throws ModelFormatException {
            Object v = get(key);
            if (v instanceof Number n) return n.floatValue();
            throw new ModelFormatException(file, "metadata key " + key + " is " + describe(v) + ", expected a float");
        }

        String string(String key) throws ModelFormatException {
            if (get(key) instanceof String s) return s;
            throw new ModelFormatException(file, "metadata key " + key + " is " + describe(values.get(key))
                    + ", expected a string");
        }

        List<?> list(String key) throws ModelFormatException {
            if (get(key) instanceof List<?> l) return l;
            throw new ModelFormatException(file, "metadata key " + key + " is " + describe(values.get(key))
                    + ", expected an array");
        }

        private static String describe(Object v) {
            if (v instanceof List<?>) return "an array";
            String s = v instanceof String ? "the string \"" + v + "\"" : String.valueOf(v);
            return s.length() > 60 ? s.substring(0, 60) + "..." : s;
        }
    }
}
