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

    /** {@code [BOS] + ids}: a sequence as the model reads it from the start of a document or prompt. */
    default int[] withBos(int[] ids) {
        int[] out = new int[ids.length + 1];
        out[0] = bos();
        System.arraycopy(ids, 0, out, 1, ids.length);
        return out;
    }

    /** {@code [BOS] + encode(text)}. */
    default int[] encodeWithBos(String text) {
        return withBos(encode(text));
    }
}
