package io.skipgpt.model;

import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Tensor;

/**
 * Keys and values of one sequence for every layer: k[l], v[l] are [capacity, kvDim], row t holds position t
 * (keys already rotated). {@link #length()} positions are filled; a forward pass appends after them. The
 * tensors live on the device of the model's backend ({@link LlamaModel#newCache}).
 */
public final class KvCache implements AutoCloseable {
    private final Tensor[] keys;
    private final Tensor[] values;
    private final int capacity;
    private int length;

    KvCache(LlamaConfig config, int capacity, Backend backend) {
        if (capacity <= 0) throw new IllegalArgumentException("KV cache capacity must be positive, got " + capacity);
        this.capacity = capacity;
        this.keys = new Tensor[config.nLayers()];
        this.values = new Tensor[config.nLayers()];
        for (int l = 0; l < config.nLayers(); l++) {
            keys[l] = backend.allocate(Tensor.DType.F32, capacity, config.kvDim());
            values[l] = backend.allocate(Tensor.DType.F32, capacity, config.kvDim());
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

    Tensor keys(int layer) {
        return keys[layer];
    }

    Tensor values(int layer) {
        return values[layer];
    }

    void advance(int n) {
        length += n;
    }

    @Override
    public void close() {
        for (int l = 0; l < keys.length; l++) {
            keys[l].close();
            values[l].close();
        }
    }
}
