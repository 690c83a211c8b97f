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

    /**
     * Scores documents made by {@link #encode}; {@code progress} as for {@link #score(String, IntConsumer)}. One cache
     * and one set of logits serve every window, sized for the longest.
     */
    public Result score(List<int[]> documents, IntConsumer progress) {
        Result total = new Result(0, 0, 0);
        if (documents.isEmpty()) return total;
        int longest = 0;
        for (int[] ids : documents) longest = Math.max(longest, ids.length);
        try (Windows windows = new Windows(Math.min(context, longest))) {
            for (int[] ids : documents) {
                total = total.plus(windows.score(ids));
                if (progress != null) progress.accept((int) total.tokens());
            }
        }
        return total;
    }

    /** Scores one document given as ids (BOS included). */
    public Result scoreIds(int[] ids) {
        return score(List.of(ids), null);
    }

    /**
     * What scoring a window needs, on the model's device, for windows of up to {@code rows} tokens: the cache, the
     * logits [rows, vocab], the targets and the losses [rows, 1]. Logits and losses stay there; only the targets go
     * up and the per-token losses come down.
     */
    private final class Windows implements AutoCloseable {
        private final Backend backend = model.backend();
        private final KvCache cache;
        private final Tensor logits, losses, targets;

        Windows(int rows) {
            cache = model.newCache(rows);
            Tensor[] made = new Tensor[3];
            try {
                made[0] = backend.allocate(Tensor.DType.F32, rows, model.config().vocabSize());
                made[1] = backend.allocate(Tensor.DType.F32, rows, 1);
                made[2] = backend.allocate(Tensor.DType.I32, rows, 1);
            } catch (RuntimeException | OutOfMemoryError e) {
                cache.close(); // and whatever was allocated before the failure
                for (Tensor t : made) if (t != null) t.close();
                throw e;
            }
            logits = made[0];
            losses = made[1];
            targets = made[2];
        }

        // Every window of one document, each from an empty cache.
        Result score(int[] ids) {
            double nll = 0;
            long count = 0;
            int stride = context - 1;
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
            return new Result(nll, count, 1);
        }

        @Override
        public void close() {
            cache.close();
            logits.close();
            losses.close();
            targets.close();
        }
    }
}
