package io.skipgpt.serve;

/**
 * How a server batches and admits work.
 *
 * @param modelName the id clients name the model by
 * @param maxBatch most sequences in the running batch, and the number of KV caches in the pool
 * @param cacheTokens capacity of each pooled KV cache: prompt plus completion of one request must fit
 * @param maxTokensTotal admission bound: the running requests' prompt + max_tokens summed never exceed it
 * @param stepTokens rows one forward pass takes at most before prompts are cut into pieces (chunked prefill);
 *     decode rows always run, prompts share what is left (at least one row)
 * @param maxQueue requests waiting for a place in the batch (every new request waits there until the next
 *     pass); beyond it, requests are refused (429)
 * @param apiKey the bearer token every request must carry, or null for none
 */
public record ServeSettings(String modelName, int maxBatch, int cacheTokens, int maxTokensTotal, int stepTokens,
                            int maxQueue, String apiKey) {
    public ServeSettings {
        if (modelName == null || modelName.isBlank()) throw new IllegalArgumentException("the model name is empty");
        if (maxBatch < 1) throw new IllegalArgumentException("--max-batch must be >= 1, got " + maxBatch);
        if (cacheTokens < 2) throw new IllegalArgumentException("--ctx must be >= 2, got " + cacheTokens);
        if (maxTokensTotal < 2) {
            throw new IllegalArgumentException("--max-tokens-total must be >= 2, got " + maxTokensTotal);
        }
        if (stepTokens < 1) throw new IllegalArgumentException("--step-tokens must be >= 1, got " + stepTokens);
        if (maxQueue < 1) throw new IllegalArgumentException("--max-queue must be >= 1, got " + maxQueue);
        if (apiKey != null && apiKey.isBlank()) throw new IllegalArgumentException("--api-key is empty");
    }

    /** The longest request (prompt + completion) that can ever run. */
    public int longestRequest() {
        return Math.min(cacheTokens, maxTokensTotal);
    }
}
