package io.skipgpt.serve;

import java.util.List;

/**
 * One completion to run: the prompt as token ids (BOS included when the prompt wants one), how many tokens
 * at most to generate, sampling (temperature 0 = greedy) and stop strings (the text ends before the first one).
 */
record GenerationRequest(int[] prompt, int maxTokens, float temperature, float topP, long seed, List<String> stop) {
    GenerationRequest {
        if (prompt.length == 0) throw new IllegalArgumentException("empty prompt");
        if (maxTokens < 1) throw new IllegalArgumentException("max tokens must be >= 1");
        stop = List.copyOf(stop);
    }

    /** Cache positions the request may use: the prompt and every token it may generate. */
    int reservation() {
        return prompt.length + maxTokens;
    }
}
