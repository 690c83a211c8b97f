package io.skipgpt.serve;

import io.skipgpt.infer.Sampler;
import io.skipgpt.infer.StreamDecoder;
import io.skipgpt.model.KvCache;
import io.skipgpt.tokenizer.Tokenizer;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * A request inside the scheduler: its prompt (fed in one or more pieces), its KV cache while it runs, the
 * text generated so far and the events for the connection that waits for it. Generation state belongs to the
 * scheduler thread; {@link #cancel()} and {@link #events()} are safe from any thread.
 *
 * <p>Stop strings: text that could still grow into a stop string is held back until it cannot; when one
 * appears, the completion ends right before it.
 */
final class Sequence {
    final GenerationRequest request;
    private final Sampler sampler;
    private final StreamDecoder decoder;
    private final int eos;
    private final BlockingQueue<Event> events = new LinkedBlockingQueue<>();
    private volatile boolean cancelled;

    KvCache cache;
    int prefilled; // prompt tokens already in the cache
    int lastToken = -1; // the token the next decode step feeds
    int generated;
    private final StringBuilder text = new StringBuilder(); // complete text so far; [0, emitted) is sent
    private int emitted;
    private boolean finished;

    Sequence(GenerationRequest request, Tokenizer tokenizer) {
        this.request = request;
        this.sampler = new Sampler(request.temperature(), request.topP(), request.seed());
        this.decoder = new StreamDecoder(tokenizer, request.prompt());
        this.eos = tokenizer.eos();
    }

    BlockingQueue<Event> events() {
        return events;
    }

    /** Asks the scheduler to drop this request (its client went away); it frees the cache at the next step. */
    void cancel() {
        cancelled = true;
    }

    boolean cancelled() {
        return cancelled;
    }

    boolean prefilling() {
        return prefilled < request.prompt().length;
    }

    boolean finished() {
        return finished;
    }

    /** Samples the next token from this sequence's logits row and moves on; may finish the sequence. */
    void accept(float[] logits) {
        int token = sampler.sample(logits);
        if (token == eos) {
            finish("stop");
            return;
        }
        generated++;
        lastToken = token;
        text.append(decoder.append(token));
        int stopAt = firstStop();
        if (stopAt >= 0) {
            send(stopAt);
            end("stop");
            return;
        }
        send(text.length() - heldBack());
        // The scheduler admits only requests whose prompt + max tokens fit the cache.
        if (generated == request.maxTokens()) finish("length");
    }

    /** Ends with the whole decoded text (including a trailing incomplete character, as a final flush). */
    private void finish(String reason) {
        String all = decoder.text();
        if (all.length() > emitted && all.startsWith(text.toString())) {
            text.setLength(0);
            text.append(all);
        }
        send(text.length());
        end(reason);
    }

    private void end(String reason) {
        finished = true;
        events.add(new Event.Done(reason, request.prompt().length, generated));
    }

    void fail(String message) {
        finished = true;
        events.add(new Event.Failed(message));
    }

    private void send(int end) {
        if (end > emitted) {
            events.add(new Event.Text(text.substring(emitted, end)));
            emitted = end;
        }
    }

    // The earliest position where a stop string starts, or -1. Held-back text starts every possible match.
    private int firstStop() {
        int first = -1;
        for (String stop : request.stop()) {
            int at = text.indexOf(stop, emitted);
            if (at >= 0 && (first < 0 || at < first)) first = at;
        }
        return first;
    }

    // Length of the longest unsent suffix that is a proper prefix of a stop string.
    private int heldBack() {
        int longest = 0;
        for (String stop : request.stop()) {
            for (int k = Math.min(stop.length() - 1, text.length() - emitted); k > longest; k--) {
                if (endsWith(stop, k)) {
                    longest = k;
                    break;
                }
            }
        }
        return longest;
    }

    // Whether the text ends with the first k characters of s.
    private boolean endsWith(String s, int k) {
        int from = text.length() - k;
        for (int i = 0; i < k; i++) if (text.charAt(from + i) != s.charAt(i)) return false;
        return true;
    }
}
