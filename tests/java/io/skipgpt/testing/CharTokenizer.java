package io.skipgpt.testing;

import io.skipgpt.tokenizer.Tokenizer;

/** One token per character, id = 3 + char mod (vocab − 3); BOS 1, EOS 2. For tests that need text, not language. */
public final class CharTokenizer implements Tokenizer {
    private final int vocab;

    public CharTokenizer(int vocab) {
        if (vocab < 4) throw new IllegalArgumentException("vocab must be at least 4");
        this.vocab = vocab;
    }

    @Override
    public int[] encode(String text) {
        return text.chars().map(ch -> 3 + ch % (vocab - 3)).toArray();
    }

    @Override
    public String decode(int[] ids) {
        StringBuilder b = new StringBuilder();
        for (int id : ids) if (id >= 3) b.append((char) (id - 3));
        return b.toString();
    }

    @Override
    public int bos() {
        return 1;
    }

    @Override
    public int eos() {
        return 2;
    }

    @Override
    public int vocabSize() {
        return vocab;
    }

    @Override
    public String describe() {
        return "one token per character, " + vocab + " ids";
    }
}
