package io.skipgpt.model;

import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.RopeStyle;
import io.skipgpt.tensor.Tensor;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * The LLaMA decoder: token embedding, {@code nLayers} pre-norm blocks (grouped-query attention with RoPE,
 * SwiGLU MLP), final RMSNorm and output head. A forward pass takes the next n tokens of a sequence, runs them
 * as matrices (GEMMs over all n rows: prefill and decode are the same code with different n), appends their
 * keys and values to the cache and returns logits only for the rows asked for.
 *
 * <p>With SkipGPT routing, a gate decides per row and layer whether attention and MLP run:
 * {@code h = x + g_att * Attn(norm(x))}, {@code out = h + g_mlp * MLP(norm(h))}. Routed execution gathers the
 * kept rows, runs the sublayer on them only and scatter-adds the result into the residual. A row that skips
 * attention still has its K and V computed and cached (later rows attend to it); only its Q, attention row and
 * O projection are skipped.
 *
 * <p>A pass can carry several sequences at once ({@link #forward(List, Tensor, Routing)}): the rows of all
 * chunks form one matrix, so every norm, projection and routed sublayer is one GEMM across sequences; attention
 * runs per chunk, against that chunk's own cache. When the caches are slots of one allocation
 * ({@link #newCaches}) the new keys and values go into them with one scatter each per layer, and the decode steps
 * of a pass (its leading chunks of one token each) run their attention in one call, each query reading its own
 * slot.
 *
 * <p>An {@link Adapter} (LoRA) adds its term after each base projection, unmerged, on the rows that projection
 * ran on.
 *
 * <p><b>Devices.</b> The model runs on its backend's device: weights are uploaded once when it is built (unless
 * they already live there), activations and KV caches are allocated there. Only small things cross to and from
 * the host per pass: token ids and positions up, the gate's decisions down (a router gate's [2, n] gates per layer,
 * its [n, 4] logits when it samples), then per routed sublayer the kept rows' indices up, and the logits down when
 * the caller's logits tensor is on the host. A GEMM needs its row count on the host anyway, so the kept count costs
 * no extra synchronisation.
 */
public final class LlamaModel implements AutoCloseable {
    private final LlamaConfig config;
    private final LlamaWeights weights;
    /** The weights the ops read: {@code weights} itself when it already lives on the backend's device. */
    private final LlamaWeights deviceWeights;
    private final Backend backend;
    /** The adapter the ops read: the caller's own when it already lives on the backend's device, else a copy. */
    private final Adapter adapter;
    private final boolean ownsAdapter;
    private final Workspace ws;

    public LlamaModel(LlamaConfig config, LlamaWeights weights, Backend backend) {
        this(config, weights, backend, Adapter.NONE);
    }

    public LlamaModel(LlamaConfig config, LlamaWeights weights, Backend backend, Adapter adapter) {
        this.config = config;
        this.weights = weights;
        this.backend = backend;
        this.deviceWeights = weights.tokenEmbedding().device() == backend.device() ? weights : weights.uploadTo(backend);
        this.adapter = adapter.on(backend);
        this.ownsAdapter = this.adapter != adapter;
        this.ws = new Workspace(config, backend);
    }

    public LlamaConfig config() {
        return config;
    }

    /** The weights the model was built with (on the host, for a model that runs on a device). */
    public LlamaWeights weights() {
        return weights;
    }

    /**
     * The weights on the backend's device, as the model's ops read them (the same object as {@link #weights()}
     * when they live there already): for code that runs its own ops over the model's weights. Owned by the model.
     */
    public LlamaWeights weightsOnDevice() {
        return deviceWeights;
    }

    public Backend backend() {
        return backend;
    }

    /** A KV cache for one sequence of up to {@code capacity} positions, on the backend's device. */
    public KvCache newCache(int capacity) {
        return KvCache.group(config, 1, capacity, backend).get(0);
    }

    /**
     * {@code count} KV caches of {@code capacity} positions as slots of one allocation per layer, for sequences
     * that run in batches (a server's, a batched benchmark's): a batched pass over them appends keys and values
     * with one scatter each per layer instead of two copies per sequence, and its decode steps run one attention
     * call for all of them. Each cache is closed on its own; the memory is freed with the last.
     */
    public List<KvCache> newCaches(int count, int capacity) {
        return KvCache.group(config, count, capacity, backend);
    }

    /** A dense forward pass: see {@link #forward(int[], KvCache, Tensor, Routing)}. */
    public void forward(int[] tokens, KvCache cache, Tensor logits) {
        forward(tokens, cache, logits, Routing.DENSE);
    }

    /**
     * Runs {@code tokens} at positions {@code cache.length() ..} and appends them to the cache: the one-chunk
     * case of {@link #forward(List, Tensor, Routing)}.
     *
     * @param logits [logitRows, vocab], filled with the logits of the last {@code logitRows} tokens
     *     (1 for generation, all n for scoring), on the host or on the backend's device; may be null when no
     *     logits are needed
     * @param routing which modules run for which rows, and where to count the decisions
     */
    public void forward(int[] tokens, KvCache cache, Tensor logits, Routing routing) {
        forward(List.of(new Chunk(tokens, cache, logits == null ? 0 : logits.rows())), logits, routing);
    }

    /**
     * The next tokens of one sequence in a batched pass, the cache they extend, and how many of its last rows
     * want logits (1 for a decode step or the end of a prompt, 0 for a prompt piece that samples nothing).
     */
    public record Chunk(int[] tokens, KvCache cache, int logitRows) {
        public Chunk {
            if (tokens.length == 0) throw new IllegalArgumentException("forward: no tokens");
            if (logitRows < 0 || logitRows > tokens.length) {
                throw new IllegalArgumentException("forward: " + logitRows + " logit rows asked of a chunk of "
                        + tokens.length + " tokens");
            }
        }

        /** A chunk that wants the logits of its last row. */
        public Chunk(int[] tokens, KvCache cache) {
            this(tokens, cache, 1);
        }
    }

    /**
     * Runs several sequences in one pass: chunk c's tokens at positions {@code cache.length() ..} of its own
     * cache, which they are appended to. Routing decides per row, as if each chunk ran alone.
     *
     * @param logits [Σ logitRows, vocab]: the logit rows of the chunks in order, on the host or on the backend's
     *     device (may be null when none asks)
     */
    public void forward(List<Chunk> chunks, Tensor logits, Routing routing) {
        if (chunks.isEmpty()) throw new IllegalArgumentException("forward: no chunks");
        int[] offsets = new int[chunks.size() + 1]; // chunk c owns rows offsets[c] .. offsets[c + 1)
        int logitRows = 0;
        Set<KvCache> caches = Collections.newSetFromMap(new IdentityHashMap<>());
        for (int c = 0; c < chunks.size(); c++) {
            Chunk chunk = chunks.get(c);
            KvCache cache = chunk.cache();
            if (!caches.add(cache)) throw new IllegalArgumentException("forward: two chunks share a KV cache");
            int end = cache.length() + chunk.tokens().length;
            if (end > cache.capacity()) {
                throw new IllegalArgumentException("forward: " + end + " positions exceed the KV cache capacity "
                        + cache.capacity());
            }
            offsets[c + 1] = offsets[c] + chunk.tokens().length;
            logitRows += chunk.logitRows();
        }
        if (logitRows > 0 && (logits == null || logits.rows() != logitRows || logits.cols() != config.vocabSize())) {
            throw new IllegalArgumentException("forward: logits " + logits + " do not fit " + logitRows
                    + " rows x vocab " + config.vocabSize());
        }
        int n = offsets[chunks.size()];
        ws.ensure(n);
        boolean grouped = chunks.size() > 1;
        for (int c = 1; grouped && c < chunks.size(); c++) grouped = chunks.get(c).cache().sharesStorage(chunks.get(0).cache());
        // hostPos holds, per row: positions in [0, n); when the caches are grouped, also the row of the group where
        // each row's sequence starts in [n, 2n) and where its key and value go in [2n, 3n). One upload for all.
        for (int c = 0; c < chunks.size(); c++) {
            int[] tokens = chunks.get(c).tokens();
            KvCache cache = chunks.get(c).cache();
            for (int i = 0, r = offsets[c]; i < tokens.length; i++, r++) {
                if (tokens[i] < 0 || tokens[i] >= config.vocabSize()) {
                    throw new IllegalArgumentException("token id " + tokens[i] + " outside the vocabulary of "
                            + config.vocabSize());
                }
                ws.hostIds[r] = tokens[i];
                ws.hostPos[r] = cache.length() + i;
                if (grouped) {
                    ws.hostPos[n + r] = cache.firstRow();
                    ws.hostPos[2 * n + r] = cache.firstRow() + cache.length() + i;
                }
            }
        }
        Tensor ids = ws.upload(ws.ids, ws.hostIds, n);
        Tensor rowInfo = ws.upload(ws.pos, ws.hostPos, grouped ? 3 * n : n);
        Rows rows = new Rows(rowInfo.rows(0, n), grouped ? rowInfo.rows(n, n) : null,
                grouped ? rowInfo.rows(2 * n, n) : null);
        Tensor x = ws.x.rows(0, n);
        backend.embedding(x, deviceWeights.tokenEmbedding(), ids);
        boolean masked = routing.execution() == Routing.Execution.MASKED_DENSE;
        for (int l = 0; l < config.nLayers(); l++) {
            routing.gate().decide(l, x, ws.keepAttn, ws.keepMlp);
            int attnKept = attentionBlock(l, x, rows, chunks, offsets, masked);
            int mlpKept = mlpBlock(l, x, n, masked);
            if (routing.stats() != null) record(routing.stats(), l, n, attnKept, mlpKept);
        }
        for (Chunk chunk : chunks) chunk.cache().advance(chunk.tokens().length);
        if (logitRows > 0) head(x, chunks, offsets, logits);
    }

    /**
     * Per-row index tensors of a pass on the device, [n] each: positions; for caches of one group also the group
     * row where each row's sequence starts and the group row its key and value go to (null otherwise).
     */
    private record Rows(Tensor positions, Tensor starts, Tensor cacheRows) {}

    // x += g_att * Wo · attention(rope(Wq · norm(x)), cache); K and V of all n rows go into their chunks'
    // caches first. Returns the number of rows that ran attention.
    private int attentionBlock(int l, Tensor x, Rows rows, List<Chunk> chunks, int[] offsets, boolean masked) {
        LlamaWeights.Layer w = deviceWeights.layers().get(l);
        int hd = config.headDim();
        int n = offsets[chunks.size()];
        Tensor xb = ws.xb.rows(0, n);
        backend.rmsnorm(xb, x, w.attnNorm(), config.normEps());
        // One sequence: K and V straight into its cache. Several: into the workspace, then into their caches
        // (one scatter when the caches are grouped, a copy per chunk otherwise).
        KvCache only = chunks.size() == 1 ? chunks.get(0).cache() : null;
        Tensor k = only != null ? only.keys(l).rows(only.length(), n) : ws.k.rows(0, n);
        Tensor v = only != null ? only.values(l).rows(only.length(), n) : ws.v.rows(0, n);
        project(k, xb, l, Projection.K);
        project(v, xb, l, Projection.V);
        backend.rope(k, rows.positions(), hd, config.ropeTheta(), RopeStyle.ADJACENT);
        KvCache first = chunks.get(0).cache();
        if (rows.cacheRows() != null) {
            backend.scatterRows(first.groupKeys(l), k, rows.cacheRows());
            backend.scatterRows(first.groupValues(l), v, rows.cacheRows());
        }
        for (int c = 0; only == null && rows.cacheRows() == null && c < chunks.size(); c++) {
            KvCache cache = chunks.get(c).cache();
            int count = offsets[c + 1] - offsets[c];
            backend.copy(cache.keys(l).rows(cache.length(), count), k.rows(offsets[c], count));
            backend.copy(cache.values(l).rows(cache.length(), count), v.rows(offsets[c], count));
        }
        int kept = masked ? n : compact(ws.keepAttn, n, rows.starts() != null ? 2 : 1);
        if (kept == 0) return 0;
        // Rows that run: all of them (dense, masked) or the gathered kept ones at their original positions.
        Tensor in = xb, qPos = rows.positions(), qStarts = rows.starts();
        if (kept < n) {
            in = ws.xg.rows(0, kept);
            backend.gatherRows(in, xb, ws.idx.rows(0, kept));
            qPos = ws.keptPos.rows(0, kept);
            if (qStarts != null) qStarts = ws.keptPos.rows(kept, kept);
        }
        Tensor q = ws.q.rows(0, kept);
        project(q, in, l, Projection.Q);
        backend.rope(q, qPos, hd, config.ropeTheta(), RopeStyle.ADJACENT);
        Tensor att = ws.att.rows(0, kept);
        // Decode steps of grouped caches (the leading chunks of one token each: a server puts its steps before its
        // prompt pieces) attend in one call, each query reading its own slot; the other chunks one by one.
        int steps = 0, stepRows = 0;
        if (qStarts != null) while (steps < chunks.size() && chunks.get(steps).tokens().length == 1) steps++;
        if (steps > 1) {
            stepRows = masked ? steps : countKept(ws.keepAttn, 0, steps); // chunk c < steps is row c
            if (stepRows > 0) {
                backend.attention(att.rows(0, stepRows), q.rows(0, stepRows), first.groupKeys(l), first.groupValues(l),
                        qPos.rows(0, stepRows), qStarts.rows(0, stepRows), config.nHeads(), config.nKvHeads(), hd);
            }
        } else {
            steps = 0;
        }
        chunkAttention(l, att, q, qPos, chunks, offsets, masked, steps, stepRows);
        Tensor proj = ws.proj.rows(0, kept);
        project(proj, att, l, Projection.O);
        return residual(x, proj, kept, n, masked ? ws.keepAttn : null);
    }

    // The running rows of each chunk from firstChunk on (contiguous in q from row firstRow: kept rows stay in
    // order) attend to its own cache.
    private void chunkAttention(int l, Tensor att, Tensor q, Tensor qPos, List<Chunk> chunks, int[] offsets,
                                boolean masked, int firstChunk, int firstRow) {
        int hd = config.headDim();
        for (int c = firstChunk, from = firstRow; c < chunks.size(); c++) {
            int count = masked ? offsets[c + 1] - offsets[c] : countKept(ws.keepAttn, offsets[c], offsets[c + 1]);
            if (count == 0) continue;
            KvCache cache = chunks.get(c).cache();
            int t = cache.length() + offsets[c + 1] - offsets[c];
            backend.attention(att.rows(from, count), q.rows(from, count), cache.keys(l).rows(0, t),
                    cache.values(l).rows(0, t), qPos.rows(from, count), config.nHeads(), config.nKvHeads(), hd);
            from += count;
        }
    }

    // x += g_mlp * Wdown · (silu(Wgate · norm(x)) * (Wup · norm(x))). Returns the number of rows that ran it.
    private int mlpBlock(int l, Tensor x, int n, boolean masked) {
        LlamaWeights.Layer w = deviceWeights.layers().get(l);
        int kept = masked ? n : compact(ws.keepMlp, n, 0);
        if (kept == 0) return 0;
        Tensor in = x;
        if (kept < n) {
            in = ws.xg.rows(0, kept);
            backend.gatherRows(in, x, ws.idx.rows(0, kept));
        }
        Tensor xb = ws.xb.rows(0, kept);
        backend.rmsnorm(xb, in, w.ffnNorm(), config.normEps());
        Tensor gate = ws.gate.rows(0, kept);
        Tensor up = ws.up.rows(0, kept);
        project(gate, xb, l, Projection.GATE);
        project(up, xb, l, Projection.UP);
        backend.swiglu(gate, gate, up);
        Tensor proj = ws.proj.rows(0, kept);
        project(proj, gate, l, Projection.DOWN);
        return residual(x, proj, kept, n, masked ? ws.keepMlp : null);
    }

    // out = x·Wᵀ for projection p of layer l, plus the adapter's term.
    private void project(Tensor out, Tensor x, int l, Projection p) {
        backend.matmul(out, x, p.of(deviceWeights.layers().get(l)));
        adapter.addTo(out, x, l, p, backend);
    }

    // Adds a sublayer's output into the residual: all rows, the kept rows by index, or (masked-dense) every row
    // multiplied by its 0/1 gate. Returns the number of rows whose gate is 1.
    private int residual(Tensor x, Tensor proj, int kept, int n, boolean[] maskedGates) {
        if (maskedGates != null) {
            int ones = 0;
            for (int i = 0; i < n; i++) {
                ws.hostGates[i] = maskedGates[i] ? 1f : 0f;
                if (maskedGates[i]) ones++;
            }
            backend.scaleRows(proj, ws.upload(ws.gates, ws.hostGates, n));
            backend.add(x, proj);
            return ones;
        }
        if (kept == n) backend.add(x, proj);
        else backend.scatterAddRows(x, proj, ws.idx.rows(0, kept));
        return kept;
    }

    // Compaction of a keep mask: ws.idx[0..count) = kept rows in order, uploaded when some rows skip, with
    // `rowInfo` of their per-row values from hostPos into ws.keptPos in one upload: none (MLP), their positions
    // in [0, count), and their group start rows in [count, 2 count) when the caches are grouped. The mask is on
    // the host already (the gate decided there), so a device-side prefix sum would save nothing: the GEMMs that
    // follow need the count on the host.
    private int compact(boolean[] keep, int n, int rowInfo) {
        int count = 0;
        for (int i = 0; i < n; i++) if (keep[i]) ws.hostIdx[count++] = i;
        if (count == 0 || count == n) return count;
        ws.upload(ws.idx, ws.hostIdx, count);
        for (int part = 0; part < rowInfo; part++) {
            for (int j = 0; j < count; j++) ws.hostKeptPos[part * count + j] = ws.hostPos[part * n + ws.hostIdx[j]];
        }
        if (rowInfo > 0) ws.upload(ws.keptPos, ws.hostKeptPos, rowInfo * count);
        return count;
    }

    private static int countKept(boolean[] keep, int from, int to) {
        int count = 0;
        for (int i = from; i < to; i++) if (keep[i]) count++;
        return count;
    }

    private void record(RoutingStats stats, int layer, int n, int attnKept, int mlpKept) {
        long all = 0, kept = 0;
        for (int i = 0; i < n; i++) {
            long keys = ws.hostPos[i] + 1;
            all += keys;
            if (ws.keepAttn[i]) kept += keys;
        }
        stats.record(layer, n, attnKept, mlpKept, all, kept);
    }

    // logits = norm(x[rows asked]) · Eᵀ: each chunk's last logitRows rows, in chunk order. They are gathered only
    // when they are not already consecutive in x (one sequence's last rows, or a decode step of several, are).
    private void head(Tensor x, List<Chunk> chunks, int[] offsets, Tensor logits) {
        int rows = logits.rows();
        for (int c = 0, r = 0; c < chunks.size(); c++) {
            for (int i = offsets[c + 1] - chunks.get(c).logitRows(); i < offsets[c + 1]; i++) ws.hostIdx[r++] = i;
        }
        Tensor last;
        if (ws.hostIdx[rows - 1] - ws.hostIdx[0] == rows - 1) {
            last = x.rows(ws.hostIdx[0], rows);
        } else {
            last = ws.xg.rows(0, rows);
            backend.gatherRows(last, x, ws.upload(ws.idx, ws.hostIdx, rows));
        }
        Tensor xb = ws.xb.rows(0, rows);
        backend.rmsnorm(xb, last, deviceWeights.outputNorm(), config.normEps());
        boolean here = logits.device() == backend.device();
        Tensor out = here ? logits : ws.logits(rows);
        backend.matmul(out, xb, deviceWeights.output());
        if (!here) backend.copy(logits, out);
    }

    @Override
    public void close() {
        ws.close();
        if (ownsAdapter) adapter.close();
        if (deviceWeights != weights) deviceWeights.close();
    }
}
