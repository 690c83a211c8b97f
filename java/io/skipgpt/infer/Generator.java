package io.skipgpt.infer;

import io.skipgpt.model.KvCache;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.routing.Routing;
import io.skipgpt.tensor.Tensor;
import io.skipgpt.tokenizer.Tokenizer;
import java.util.function.Consumer;

/**
 * Prompt in, continuation out: prefill the prompt in one forward pass, then decode one token per pass until
 * EOS, the token budget or the context runs out. Text is streamed as soon as it forms whole characters.
 */
public final class Generator {
    /** Timing and counts of one generation. */
    public record Result(int[] tokens, String text, int promptTokens, long prefillNanos, long decodeNanos) {
        public double prefillTokensPerSecond() {
            return prefillNanos == 0 ? 0 : promptTokens * 1e9 / prefillNanos;
        }

        /** Decode speed over the tokens after the first (the first one comes out of the prefill). */
        public double decodeTokensPerSecond() {
            return decodeNanos == 0 || tokens.length < 2 ? 0 : (tokens.length - 1) * 1e9 / decodeNanos;
        }
    }

    private final LlamaModel model;
    private final Tokenizer tokenizer;
    private final Routing routing;

    public Generator(LlamaModel model, Tokenizer tokenizer) {
        this(model, tokenizer, Routing.DENSE);
    }

    public Generator(LlamaModel model, Tokenizer tokenizer, Routing routing) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.routing = routing;
    }

    /**
     * Generates up to maxTokens after BOS + prompt. {@code stream} receives the new text piece by piece
     * (may be null). Stops early at EOS or at the model's context length.
     */
    public Result generate(String prompt, int maxTokens, Sampler sampler, Consumer<String> stream) {
        if (maxTokens < 0) throw new IllegalArgumentException("max tokens must be >= 0, got " + maxTokens);
        int[] input = tokenizer.encodeWithBos(prompt);
        int context = model.config().contextLength();
        if (input.length >= context) {
            throw new IllegalArgumentException("prompt of " + input.length + " tokens does not fit the context of "
                    + context);
        }
        int budget = Math.min(maxTokens, context - input.length);
        int[] out = new int[budget];
        int produced = 0;
        long prefill = 0, decode = 0;
        StreamDecoder text = new StreamDecoder(tokenizer, input);
        try (KvCache cache = model.newCache(input.length + budget);
                Tensor logits = Tensor.f32(1, model.config().vocabSize())) {
            if (budget == 0) return new Result(new int[0], "", input.length, 0, 0);
            long t0 = System.nanoTime();
            model.forward(input, cache, logits, routing);
            prefill = System.nanoTime() - t0;
            long t1 = System.nanoTime();
            float[] row = new float[model.config().vocabSize()];
            while (produced < budget) {
                logits.f32().get(row);
                int next = sampler.sample(row);
                if (next == tokenizer.eos()) break;
                out[produced++] = next;
                String piece = text.append(next);
                if (stream != null && !piece.isEmpty()) stream.accept(piece);
                if (produced < budget) model.forward(new int[] {next}, cache, logits, routing);
            }
            decode = System.nanoTime() - t1;
        }
        int[] tokens = java.util.Arrays.copyOf(out, produced);
        return new Result(tokens, text.text(), input.length, prefill, decode);
    }
}
