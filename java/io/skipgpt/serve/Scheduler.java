package io.skipgpt.serve;

import io.skipgpt.model.LlamaModel;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.tensor.Tensor;
import io.skipgpt.tokenizer.Tokenizer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.RejectedExecutionException;

/**
 * Continuous batching on one thread. Between forward passes, finished and cancelled sequences leave the batch
 * (their caches go back to the pool) and queued requests join it, first come first served, while the batch has
 * room ({@code maxBatch}) and the running requests' reservations (prompt + max tokens) stay within
 * {@code maxTokensTotal}. Each pass runs every running sequence's next rows as one batched forward: one row per
 * decoding sequence, and prompt pieces of joining ones sharing the rest of the {@code stepTokens} budget.
 */
public final class Scheduler implements AutoCloseable {
    /**
     * What the scheduler is doing, as of the last pass. With routing, the module sparsity and the FLOP bound
     * (dense FLOPs / executed FLOPs of the decoder layers) of everything run so far; null when dense.
     */
    public record Snapshot(int running, int queued, int freeCaches, int caches, long passes, long promptTokens,
                           long generatedTokens, Double moduleSparsity, Double flopBound) {}

    private final LlamaModel model;
    private final Tokenizer tokenizer;
    private final Routing routing;
    private final RoutingStats stats; // the routing's statistics, or null when dense
    private final ServeSettings settings;
    private final CachePool pool;
    private final Tensor logits;
    private final float[] row; // one sequence's logits for its sampler, reused (scheduler thread only)
    private final Thread thread;

    private final Object lock = new Object();
    private final ArrayDeque<Sequence> queue = new ArrayDeque<>(); // guarded by lock
    private boolean closed; // guarded by lock
    private final List<Sequence> running = new ArrayList<>(); // scheduler thread only
    private int reserved; // scheduler thread only
    private long passes, promptTokens, generatedTokens; // scheduler thread only
    private volatile Snapshot snapshot;

    /**
     * Allocates the cache pool and starts the scheduler thread. {@code routing}'s gate and statistics are used
     * by the scheduler thread only.
     */
    public Scheduler(LlamaModel model, Tokenizer tokenizer, Routing routing, ServeSettings settings) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.routing = routing;
        this.stats = routing.stats();
        this.settings = settings;
        this.pool = new CachePool(model, settings.maxBatch(), settings.cacheTokens());
        this.logits = Tensor.f32(settings.maxBatch(), model.config().vocabSize());
        this.row = new float[model.config().vocabSize()];
        publish();
        this.thread = new Thread(this::loop, "skipgpt-scheduler");
        thread.setDaemon(true);
        thread.start();
    }

    public ServeSettings settings() {
        return settings;
    }

    public Snapshot snapshot() {
        return snapshot;
    }

    /**
     * Queues a request. Throws {@link IllegalArgumentException} for a request that could never run (longer than
     * a cache or than {@code maxTokensTotal}), {@link RejectedExecutionException} when the queue is full and
     * {@link IllegalStateException} when the scheduler has stopped.
     */
    Sequence submit(GenerationRequest request) {
        if (request.reservation() > settings.longestRequest()) {
            throw new IllegalArgumentException("prompt (" + request.prompt().length + " tokens) + max tokens ("
                    + request.maxTokens() + ") exceed the " + settings.longestRequest() + " tokens a request may use");
        }
        Sequence s = new Sequence(request, tokenizer);
        synchronized (lock) {
            if (closed) throw new IllegalStateException("the server is shutting down");
            if (queue.size() >= settings.maxQueue()) {
                throw new RejectedExecutionException("the server is busy: " + queue.size()
                        + " requests are queued (--max-queue " + settings.maxQueue() + "); retry later");
            }
            queue.add(s);
            lock.notifyAll();
        }
        return s;
    }

    private void loop() {
        try {
            serve();
        } finally {
            shutDown(); // also after an Error: nobody may wait forever for a dead scheduler
        }
    }

    private void serve() {
        while (true) {
            synchronized (lock) {
                while (running.isEmpty() && queue.isEmpty() && !closed) {
                    try {
                        lock.wait();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        closed = true;
                    }
                }
                if (closed) break;
                admit();
            }
            running.removeIf(s -> {
                boolean cancelled = s.cancelled(); // read once: an HTTP thread may set it between two reads
                if (cancelled) leave(s);
                return cancelled;
            });
            if (!running.isEmpty()) {
                try {
                    pass();
                } catch (RuntimeException e) {
                    // A failure inside the model must not take the server down: fail this batch, keep serving.
                    for (Sequence s : running) {
                        s.fail("internal error during generation: " + e);
                        leave(s);
                    }
                    running.clear();
                    System.err.println("serve: a forward pass failed: " + e);
                }
            }
            publish();
        }
    }

    // Moves queued requests into the batch while they fit; the head waits (no overtaking) when it does not.
    private void admit() {
        while (!queue.isEmpty()) {
            Sequence head = queue.peek();
            if (head.cancelled()) {
                queue.poll();
                continue;
            }
            if (running.size() >= settings.maxBatch()
                    || reserved + head.request.reservation() > settings.maxTokensTotal()) {
                return;
            }
            queue.poll();
            head.cache = pool.acquire();
            reserved += head.request.reservation();
            running.add(head);
        }
    }

    private void leave(Sequence s) {
        pool.release(s.cache);
        s.cache = null;
        reserved -= s.request.reservation();
    }

    private void pass() {
        List<LlamaModel.Chunk> chunks = new ArrayList<>();
        List<Sequence> sampling = new ArrayList<>(); // in the order of the logit rows
        for (Sequence s : running) {
            if (!s.prefilling()) {
                chunks.add(new LlamaModel.Chunk(new int[] {s.lastToken}, s.cache));
                sampling.add(s);
            }
        }
        int budget = Math.max(1, settings.stepTokens() - chunks.size());
        for (Sequence s : running) {
            if (!s.prefilling() || budget == 0) continue;
            int[] prompt = s.request.prompt();
            int take = Math.min(budget, prompt.length - s.prefilled);
            boolean last = s.prefilled + take == prompt.length;
            chunks.add(new LlamaModel.Chunk(Arrays.copyOfRange(prompt, s.prefilled, s.prefilled + take), s.cache,
                    last ? 1 : 0));
            s.prefilled += take;
            promptTokens += take;
            budget -= take;
            if (last) sampling.add(s);
        }
        Tensor rows = sampling.isEmpty() ? null : logits.rows(0, sampling.size());
        model.forward(chunks, rows, routing);
        passes++;
        for (int i = 0; i < sampling.size(); i++) {
            Sequence s = sampling.get(i);
            int before = s.generated;
            rows.rows(i, 1).f32().get(row);
            s.accept(row);
            generatedTokens += s.generated - before;
        }
        running.removeIf(s -> {
            if (s.finished()) leave(s);
            return s.finished();
        });
    }

    private void publish() {
        int queued;
        synchronized (lock) {
            queued = queue.size();
        }
        snapshot = new Snapshot(running.size(), queued, pool.free(), pool.size(), passes, promptTokens,
                generatedTokens, stats == null ? null : stats.moduleSparsity(), stats == null ? null : stats.flopBound());
    }

    /** Stops the scheduler thread; queued and running requests fail with a message. Frees the cache pool. */
    @Override
    public void close() {
        synchronized (lock) {
            closed = true;
            lock.notifyAll();
        }
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void shutDown() {
        List<Sequence> waiting;
        synchronized (lock) {
            closed = true;
            waiting = new ArrayList<>(queue);
            queue.clear();
        }
        for (Sequence s : waiting) s.fail("the server is shutting down");
        for (Sequence s : running) {
            s.fail("the server is shutting down");
            leave(s);
        }
        running.clear();
        publish();
        pool.close();
        logits.close();
    }
}
