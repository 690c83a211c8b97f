package io.skipgpt.serve;

import io.skipgpt.model.KvCache;
import io.skipgpt.model.LlamaModel;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * A slab of fixed-capacity KV caches allocated once at start-up: a sequence takes one when it joins the batch
 * and gives it back (cleared, memory kept) when it leaves, so serving allocates no cache memory per request.
 * The caches are one group ({@link LlamaModel#newCaches}), so a batch's decode step writes its keys and values
 * with one scatter each per layer and attends in one call.
 */
final class CachePool implements AutoCloseable {
    private final List<KvCache> all = new ArrayList<>();
    private final ArrayDeque<KvCache> free = new ArrayDeque<>();

    CachePool(LlamaModel model, int caches, int capacity) {
        all.addAll(model.newCaches(caches, capacity));
        free.addAll(all);
    }

    int size() {
        return all.size();
    }

    synchronized int free() {
        return free.size();
    }

    /** An empty cache, or null when all are taken. */
    synchronized KvCache acquire() {
        return free.poll();
    }

    synchronized void release(KvCache cache) {
        if (!all.contains(cache) || free.contains(cache)) {
            throw new IllegalStateException("a KV cache was given back that the pool did not lend");
        }
        cache.clear();
        free.push(cache);
    }

    @Override
    public synchronized void close() {
        all.forEach(KvCache::close);
        all.clear();
        free.clear();
    }
}
