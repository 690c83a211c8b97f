package io.skipgpt.eval;

import io.skipgpt.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Zero-shot multiple choice, scored the way lm-evaluation-harness scores it. Every candidate of an item is a
 * request (context, continuation); its score is the log-likelihood of the continuation tokens given
 * {@code [BOS] + context}:
 * <ul>
 *   <li>multiple choice: one context, one continuation per choice; {@code acc} picks the highest log-likelihood,
 *       {@code acc_norm} the highest log-likelihood per character of the choice;</li>
 *   <li>partial scoring (WinoGrande): one context per option, one shared continuation; the option whose context
 *       makes the continuation likeliest wins ({@code acc} only);</li>
 *   <li>last word (LAMBADA): correct when every continuation token is the argmax of its row (greedy), plus the
 *       harness's perplexity {@code exp(-mean log-likelihood)} over items.</li>
 * </ul>
 * Tokenisation follows the harness: trailing whitespace of the context moves to the front of the continuation,
 * {@code context + continuation} is encoded whole and the continuation is what follows the encoded context's
 * length; BOS goes first. A request longer than the model's window keeps its last tokens (left truncation). Each
 * request is one forward pass with logits only for the continuation rows; {@link ModelLogits} runs only what
 * follows the prefix a request shares with the previous one, so an item's context runs once for all candidates.
 */
public final class ZeroShot {
    /** What scoring needs from a model: the logits of a sequence's last rows, the sequence run from an empty context. */
    public interface LanguageModel {
        int vocabSize();

        /** The most tokens one pass may take. */
        int maxTokens();

        /** Row-major [rows, vocab]: the logits of positions {@code tokens.length - rows ..}, i.e. the predictions
         * of the tokens after them. */
        float[] lastLogits(int[] tokens, int rows);
    }

    /** One candidate: the continuation is scored given the context. */
    public record Request(String context, String continuation) {}

    /** The log-likelihood of a continuation, whether greedy decoding would produce it, and its token count. */
    public record LogLikelihood(double value, boolean greedy, int tokens) {}

    /** Figures of one task; NaN where a metric does not apply to the task. */
    public record TaskResult(String task, int items, double acc, double accStderr, double accNorm, double ppl) {}

    private final LanguageModel model;
    private final Tokenizer tokenizer;

    public ZeroShot(LanguageModel model, Tokenizer tokenizer) {
        this.model = model;
        this.tokenizer = tokenizer;
    }

    /** Scores every item of a task; {@code progress} (may be null) receives the number of requests done. */
    public TaskResult evaluate(ZeroShotTasks.Task task, List<ZeroShotTasks.Item> items, IntConsumer progress) {
        if (items.isEmpty()) throw new IllegalArgumentException(task.label() + ": no items to score");
        int correct = 0, correctNorm = 0, done = 0;
        double llSum = 0;
        for (ZeroShotTasks.Item item : items) {
            List<Request> requests = item.requests();
            double[] ll = new double[requests.size()];
            double[] perChar = new double[requests.size()];
            boolean greedy = true;
            for (int i = 0; i < ll.length; i++) {
                LogLikelihood r = logLikelihood(requests.get(i));
                ll[i] = r.value();
                greedy &= r.greedy();
                String choice = requests.get(i).continuation();
                perChar[i] = r.value() / choice.codePointCount(0, choice.length());
                if (progress != null) progress.accept(++done);
            }
            if (task.kind() == ZeroShotTasks.Kind.LAST_WORD) {
                if (greedy) correct++;
                llSum += ll[0];
            } else {
                if (argmax(ll) == item.gold()) correct++;
                if (argmax(perChar) == item.gold()) correctNorm++;
            }
        }
        int n = items.size();
        double acc = (double) correct / n;
        double stderr = n > 1 ? Math.sqrt(acc * (1 - acc) / (n - 1)) : Double.NaN;
        double accNorm = task.kind() == ZeroShotTasks.Kind.MULTIPLE_CHOICE ? (double) correctNorm / n : Double.NaN;
        double ppl = task.kind() == ZeroShotTasks.Kind.LAST_WORD ? Math.exp(-llSum / n) : Double.NaN;
        return new TaskResult(task.label(), n, acc, stderr, accNorm, ppl);
    }

    /**
     * The log-likelihood of a request's continuation given its context. When {@code [BOS] + context + continuation}
     * minus its last token fits the window, this is one pass (its first tokens cut off if need be); a continuation
     * longer than the window is scored in window-sized pieces from the end, each piece after the window of
     * tokens before it.
     */
    public LogLikelihood logLikelihood(Request request) {
        int[][] split = encode(request);
        int[] context = split[0], continuation = split[1];
        int total = 1 + context.length + continuation.length;
        int[] all = new int[total];
        all[0] = tokenizer.bos();
        System.arraycopy(context, 0, all, 1, context.length);
        System.arraycopy(continuation, 0, all, 1 + context.length, continuation.length);
        int window = model.maxTokens(), vocab = model.vocabSize();
        double sum = 0;
        boolean greedy = true;
        // Targets all[a..b) are predicted by the last b - a rows of the input all[b-1-length .. b-1).
        for (int b = total, first = 1 + context.length; b > first; ) {
            int a = Math.max(first, b - window);
            int length = Math.min(window, b - 1);
            float[] logits = model.lastLogits(Arrays.copyOfRange(all, b - 1 - length, b - 1), b - a);
            for (int j = 0; j < b - a; j++) {
                int target = all[a + j], off = j * vocab, best = 0;
                double max = Double.NEGATIVE_INFINITY;
                for (int v = 0; v < vocab; v++) {
                    if (logits[off + v] > max) {
                        max = logits[off + v];
                        best = v;
                    }
                }
                double z = 0;
                for (int v = 0; v < vocab; v++) z += Math.exp(logits[off + v] - max);
                sum += logits[off + target] - max - Math.log(z);
                greedy &= best == target;
            }
            b = a;
        }
        return new LogLikelihood(sum, greedy, continuation.length);
    }

    /** The harness's split: {context tokens, continuation tokens}, BOS not included. */
    int[][] encode(Request request) {
        String context = request.context(), continuation = request.continuation();
        int end = context.length();
        while (end > 0 && Character.isWhitespace(context.charAt(end - 1))) end--;
        continuation = context.substring(end) + continuation;
        context = context.substring(0, end);
        int[] whole = tokenizer.encode(context + continuation);
        int[] contextIds = context.isEmpty() ? new int[0] : tokenizer.encode(context);
        int cut = Math.min(contextIds.length, whole.length);
        int[] continuationIds = Arrays.copyOfRange(whole, cut, whole.length);
        if (continuationIds.length == 0) {
            throw new IllegalArgumentException("continuation '" + request.continuation() + "' encodes to no tokens");
        }
        return new int[][] {contextIds, continuationIds};
    }

    private static int argmax(double[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
