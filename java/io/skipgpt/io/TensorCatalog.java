package io.skipgpt.io;

import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.tensor.Tensor;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The tensors of one model (possibly spread over several files) by name. Filling a weight checks presence and
 * shape and records which storage types the model used.
 */
final class TensorCatalog {
    private final Path model;
    private final Map<String, StoredTensor> tensors = new LinkedHashMap<>();
    private final Set<StorageType> used = EnumSet.noneOf(StorageType.class);

    /** {@code model} is the path named in "missing tensor" errors (the file, or the directory of shards). */
    TensorCatalog(Path model) {
        this.model = model;
    }

    void add(StoredTensor t) throws ModelFormatException {
        if (tensors.putIfAbsent(t.name(), t) != null) {
            throw new ModelFormatException(t.file().path, "tensor '" + t.name() + "' appears twice");
        }
    }

    boolean has(String name) {
        return tensors.containsKey(name);
    }

    StoredTensor get(String name) throws ModelFormatException {
        StoredTensor t = tensors.get(name);
        if (t == null) throw new ModelFormatException(model, "missing tensor '" + name + "'");
        return t;
    }

    /** Tensor {@code name}, checked to exist with the row-major shape {@code expected}. */
    private StoredTensor checked(String name, int[] expected) throws ModelFormatException {
        StoredTensor t = get(name);
        long[] want = Arrays.stream(expected).asLongStream().toArray();
        if (!Arrays.equals(t.shape(), want)) {
            throw new ModelFormatException(t.file().path, "tensor '" + name + "' has shape " + t.shapeText()
                    + ", expected " + Arrays.toString(want));
        }
        return t;
    }

    /** Reads tensor {@code name} into {@code dst} after checking its shape equals dst's. */
    private void fill(String name, Tensor dst) throws ModelFormatException {
        StoredTensor t = checked(name, dst.shape());
        t.readInto(dst);
        used.add(t.type());
    }

    /**
     * Reads all weights of {@code config} under a format's names into freshly allocated weights. With
     * {@code rotateHalf}, Q and K are stored in Hugging Face's rotate-half row order and are permuted to the
     * internal adjacent-pair order. A tied config reads no OUTPUT tensor.
     */
    LlamaWeights readWeights(LlamaConfig config, WeightSlot.Naming naming, boolean rotateHalf)
            throws ModelFormatException {
        // Every tensor is checked before anything is allocated: a corrupt config then fails with a clear message
        // instead of an attempt to allocate its (possibly huge) sizes.
        for (WeightSlot.Entry e : WeightSlot.fileOrder(config.nLayers(), config.tiedEmbeddings())) {
            checked(naming.name(e.slot(), e.layer()), e.slot().shape(config));
        }
        LlamaWeights w = LlamaWeights.allocate(config);
        try {
            for (WeightSlot.Entry e : WeightSlot.fileOrder(config.nLayers(), config.tiedEmbeddings())) {
                WeightSlot slot = e.slot();
                Tensor dst = slot.of(w, e.layer());
                String name = naming.name(slot, e.layer());
                boolean permuted = rotateHalf && (slot == WeightSlot.WQ || slot == WeightSlot.WK);
                if (!permuted) {
                    fill(name, dst);
                    continue;
                }
                try (Tensor stored = Tensor.f32(dst.shape())) {
                    fill(name, stored);
                    int heads = slot == WeightSlot.WQ ? config.nHeads() : config.nKvHeads();
                    RopeLayout.permuteRows(stored, dst, RopeLayout.toAdjacent(stored.rows(), heads));
                }
            }
            return w;
        } catch (ModelFormatException | RuntimeException e) {
            w.close();
            throw e;
        }
    }

    /** True when both tensors exist with the same type, shape and bytes: an output head stored as a copy. */
    boolean identical(String a, String b) throws ModelFormatException {
        StoredTensor x = tensors.get(a), y = tensors.get(b);
        return x != null && y != null && x.type() == y.type() && Arrays.equals(x.shape(), y.shape())
                && x.file() == y.file() && x.file().sameBytes(x.offset(), y.offset(), x.bytes());
    }

    /** The storage types of the tensors filled so far, e.g. "F32" or "F32+Q8_0". */
    String storedDtype() {
        return used.stream().map(Enum::name).collect(Collectors.joining("+"));
    }
}
