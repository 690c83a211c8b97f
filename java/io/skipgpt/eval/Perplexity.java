package io.skipgpt.eval;

import io.skipgpt.model.KvCache;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.routing.Routing;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Tensor;
import io.skipgpt.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Perplexity by the project's protocol. A text containing lines {@code <|endoftext|>} is split into documents,
 * each stripped and scored on its own as {@code [BOS] + tokens}; any other text is one document. A document
 * longer than the context C is cut into windows {@code ids[(C-1)k : (C-1)k + C]} overlapping by one token, each
 * run from an empty cache and predicting its tokens 1..end, so every token after BOS is predicted exactly once.
 * All predicted tokens are pooled.
 */
public final class Perplexity {
    public static final String DOCUMENT_SEPARATOR = "<|endoftext|>";

    /** Pooled result: total negative log-likelihood (nats) over {@code tokens} predictions. */
    public record Result(double nll, long tokens, int documents) {
        public double meanNll() {
            return tokens == 0 ? Double.NaN : nll / tokens;
        }

        public double ppl() {
            return Math.exp(meanNll());
        }

        public Result plus(Result o) {
            return new Result(nll + o.nll, tokens + o.tokens, documents + o.documents);
        }
    }

    private final LlamaModel model;
    private final Tokenizer tokenizer;
    private final int context;
    private final Routing routing;

    public Perplexity(LlamaModel model, Tokenizer tokenizer, int context) {
        this(model, tokenizer, context, Routing.DENSE);
    }

    /** Scores with routing: every position fed through the model is routed (and counted, when stats are set). */
    public Perplexity(LlamaModel model, Tokenizer tokenizer, int context, Routing routing) {
        if (context < 2) throw new IllegalArgumentException("context must be at least 2 tokens, got " + context);
        this.model = model;
        this.tokenizer = tokenizer;
        this.context = context;
        this.routing = routing;
    }

    /** Splits a text into documents by the protocol above. */
    public static List<String> documents(String text) {
        List<String> docs = new ArrayList<>();
        boolean separated = false;
        StringBuilder current = new StringBuilder();
        for (String line : text.split("\n", -1)) {
            if (line.strip().equals(DOCUMENT_SEPARATOR)) {
                separated = true;
                addStripped(docs, current);
                current.setLength(0);
            } else {
                current.append(line).append('\n');
            }
        }
        if (!separated) return List.of(text);
        addStripped(docs, current);
        return docs;
    }

    private static void addStripped(List<String> docs, StringBuilder doc) {
        String s = doc.toString().strip();
        if (!s.isEmpty()) docs.add(s);
    }

    /** Scores a whole text; {@code progress} receives the number of tokens scored so far (may be null). */
    public Result score(String text, IntConsumer progress) {
        return score(encode(tokenizer, text), progress);
    }

    /** The documents of a text as the model reads them, {@code [BOS] + tokens} each: encode once, score often. */
    public static List<int[]> encode(Tokenizer tokenizer, String text) {
        List<int[]> out = new ArrayList<>();
        for (String doc : documents(text)) out.add(tokenizer.encodeWithBos(doc));
        return out;
    }

    /** Scores documents made by {@link #encode}; {@code progress} as for {@link #score(String, IntConsumer)}. */
    public Result score(List<int[]> documents, IntConsumer progress) {
        Result total = new Result(0, 0, 0);
        for (int[] ids : documents) {
            total = total.plus(scoreIds(ids));
            if (progress != null) progress.accept((int) total.tokens());
        }
        return total;
    }

    /**
     * Scores one document given as ids (BOS included). Logits and losses stay on the model's device; only the
     * targets go up and the per-token losses come down.
     */
    public Result scoreIds(int[] ids) {
        double nll = 0;
        long count = 0;
        int stride = context - 1;
        int rows = Math.min(context, ids.length);
        Backend backend = model.backend();
        try (KvCache cache = model.newCache(rows);
                Tensor logits = backend.allocate(Tensor.DType.F32, rows, model.config().vocabSize());
                Tensor losses = backend.allocate(Tensor.DType.F32, rows, 1);
                Tensor targets = backend.allocate(Tensor.DType.I32, rows, 1)) {
            for (int start = 0; start < ids.length - 1; start += stride) {
                int end = Math.min(start + context, ids.length);
                int n = end - start;
                int[] window = Arrays.copyOfRange(ids, start, end);
                cache.clear();
                Tensor l = logits.rows(0, n);
                model.forward(window, cache, l, routing);
                // Row i predicts window[i + 1]; the last row predicts nothing inside the window.
                Tensor t = targets.rows(0, n - 1);
                try (Tensor next = Tensor.ofInts(Arrays.copyOfRange(window, 1, n), n - 1, 1)) {
                    backend.copy(t, next);
                }
                Tensor loss = losses.rows(0, n - 1);
                backend.crossEntropy(loss, l.rows(0, n - 1), t);
                try (Tensor host = backend.download(loss)) {
                    for (int i = 0; i < n - 1; i++) nll += host.get(i);
                }
                count += n - 1;
                if (end == ids.length) break;
            }
        }
        return new Result(nll, count, 1);
    }
}
