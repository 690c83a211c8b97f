package io.skipgpt.serve;

/** What the scheduler tells the connection serving a request, in order: text pieces, then one end. */
sealed interface Event {
    /** New completion text (never empty). */
    record Text(String text) implements Event {}

    /** The completion ended: "stop" (EOS or a stop string) or "length" (max_tokens or the cache is full). */
    record Done(String finishReason, int promptTokens, int completionTokens) implements Event {}

    /** The request failed on the server side. */
    record Failed(String message) implements Event {}
}
