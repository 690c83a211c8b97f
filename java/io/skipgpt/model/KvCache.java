package io.skipgpt.model;

import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Keys and values of one sequence for every layer: k[l], v[l] are [capacity, kvDim], row t holds position t
 * (keys already rotated). {@link #length()} positions are filled; a forward pass appends after them. The
 * tensors live on the device of the model's backend ({@link LlamaModel#newCache}).
 *
 * <p>Caches made together ({@link LlamaModel#newCaches}) are slots of one allocation per layer,
 * [count * capacity, kvDim]: a batched pass over them writes its new keys and values with one scatter each per
 * layer and runs the decode steps of all its sequences in one attention call, instead of copies and a call per
 * sequence. Each cache is closed on its own (closing one twice does nothing); the shared memory goes with the last
 * of them.
 */
public final class KvCache implements AutoCloseable {
    private final Storage storage;
    private final int firstRow;
    private final Tensor[] keys; // views of the storage: rows firstRow .. firstRow + capacity
    private final Tensor[] values;
    private final int capacity;
    private int length;
    private boolean closed;

    /** The layers' key and value tensors of a group of caches, freed when the last cache of the group closes. */
    private static final class Storage {
        final Tensor[] keys;
        final Tensor[] values;
        int open;

        Storage(LlamaConfig config, int rows, Backend backend) {
            keys = new Tensor[config.nLayers()];
            values = new Tensor[config.nLayers()];
            try {
                for (int l = 0; l < config.nLayers(); l++) {
                    keys[l] = backend.allocate(Tensor.DType.F32, rows, config.kvDim());
                    values[l] = backend.allocate(Tensor.DType.F32, rows, config.kvDim());
                }
            } catch (RuntimeException | OutOfMemoryError e) {
                free(); // the layers allocated before the one that failed
                throw e;
            }
        }

        void release() {
            if (--open == 0) free();
        }

        private void free() {
            for (Tensor t : keys) if (t != null) t.close();
            for (Tensor t : values) if (t != null) t.close();
        }
    }

    /** {@code count} caches of {@code capacity} positions sharing one allocation per layer. */
    static List<KvCache> group(LlamaConfig config, int count, int capacity, Backend backend) {
        if (capacity <= 0) throw new IllegalArgumentException("KV cache capacity must be positive, got " + capacity);
        if (count <= 0) throw new IllegalArgumentException("the number of KV caches must be positive, got " + count);
        if ((long) count * capacity > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(count + " KV caches of " + capacity + " positions exceed "
                    + Integer.MAX_VALUE + " rows");
        }
        Storage storage = new Storage(config, count * capacity, backend);
        List<KvCache> caches = new ArrayList<>(count);
        for (int i = 0; i < count; i++) caches.add(new KvCache(storage, i * capacity, capacity));
        storage.open = count;
        return caches;
    }

    private KvCache(Storage storage, int firstRow, int capacity) {
        this.storage = storage;
        this.firstRow = firstRow;
        this.capacity = capacity;
        this.keys = new Tensor[storage.keys.length];
        this.values = new Tensor[storage.values.length];
        for (int l = 0; l < keys.length; l++) {
            keys[l] = storage.keys[l].rows(firstRow, capacity);
            values[l] = storage.values[l].rows(firstRow, capacity);
        }
    }

    public int capacity() {
        return capacity;
    }

    public int length() {
        return length;
    }

    /** Forgets every position (the memory is reused). */
    public void clear() {
        length = 0;
    }

    /** Forgets the positions from {@code length} on, keeping the first ones (the memory is reused). */
    public void truncate(int length) {
        if (length < 0 || length > this.length) {
            throw new IllegalArgumentException("cannot truncate a KV cache of " + this.length + " positions to " + length);
        }
        this.length = length;
    }

    /** [capacity, kvDim]: this sequence's keys of a layer. */
    Tensor keys(int layer) {
        return keys[layer];
    }

    /** [capacity, kvDim]: this sequence's values of a layer. */
    Tensor values(int layer) {
        return values[layer];
    }

    /** Whether this cache and {@code other} are slots of one allocation ({@link LlamaModel#newCaches}). */
    boolean sharesStorage(KvCache other) {
        return storage == other.storage;
    }

    /** The keys of a layer for the whole group this cache belongs to: [count * capacity, kvDim]. */
    Tensor groupKeys(int layer) {
        return storage.keys[layer];
    }

    /** The values of a layer for the whole group, like {@link #groupKeys}. */
    Tensor groupValues(int layer) {
        return storage.values[layer];
    }

    /** The row of {@link #groupKeys} that holds this sequence's position 0. */
    int firstRow() {
        return firstRow;
    }

    void advance(int n) {
        length += n;
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        storage.release();
    }
}
