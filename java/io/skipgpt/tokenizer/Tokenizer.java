package io.skipgpt.tokenizer;

/** Text to token ids and back. Encoding never adds BOS; callers prepend {@link #bos()} where a protocol says so. */
public interface Tokenizer {
    /** Token ids of the text, without BOS or EOS. */
    int[] encode(String text);

    /** The text of a token sequence (a sequence starting right after BOS loses the leading space SentencePiece adds). */
    String decode(int[] ids);

    int bos();

    int eos();

    int vocabSize();

    /** One line for {@code info}: kind and size, e.g. "SentencePiece BPE, 512 pieces, byte fallback". */
    String describe();
}
