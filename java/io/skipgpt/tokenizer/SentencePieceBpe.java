package io.skipgpt.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * SentencePiece-style BPE as llama2.c and llama.cpp run it: pieces carry U+2581 ("▁") for a space, the text gets
 * a leading "▁", encoding starts from single code points (a code point without a piece becomes its UTF-8 bytes as
 * {@code <0xNN>} byte tokens) and repeatedly merges the adjacent pair whose concatenation is the piece with the
 * highest score, ties going to the leftmost pair.
 *
 * <p>Control pieces (BOS, EOS, {@code <unk>}, {@code <pad>}) and byte tokens never take part in merges, never
 * match text, and decode to nothing (control) or their raw byte (byte tokens).
 */
public final class SentencePieceBpe implements Tokenizer {
    static final char SPACE = '\u2581';

    private final String[] pieces;
    private final float[] scores;
    private final int bos;
    private final int eos;
    private final int unk;
    /** Pieces that text can be made of: everything but control pieces and byte tokens, first occurrence wins. */
    private final Map<String, Integer> textPieces = new HashMap<>();
    /** byteToken[b] = id of {@code <0xNN>} for byte b, or -1 when the vocabulary has none. */
    private final int[] byteToken = new int[256];
    /** For every id: the byte value of a byte token, -1 for a text piece, -2 for a control piece. */
    private final int[] kind;

    public SentencePieceBpe(String[] pieces, float[] scores, int bos, int eos) {
        if (pieces.length != scores.length) {
            throw new IllegalArgumentException(pieces.length + " pieces but " + scores.length + " scores");
        }
        if (bos < 0 || bos >= pieces.length || eos < 0 || eos >= pieces.length) {
            throw new IllegalArgumentException("BOS " + bos + " / EOS " + eos + " outside the vocabulary of "
                    + pieces.length);
        }
        this.pieces = pieces.clone();
        this.scores = scores.clone();
        this.bos = bos;
        this.eos = eos;
        Arrays.fill(byteToken, -1);
        kind = new int[pieces.length];
        int unkId = -1;
        for (int id = 0; id < pieces.length; id++) {
            String p = pieces[id];
            int b = byteValue(p);
            if (id == bos || id == eos || p.equals("<unk>") || p.equals("<pad>")) {
                kind[id] = -2;
                if (p.equals("<unk>") && unkId < 0) unkId = id;
            } else if (b >= 0) {
                kind[id] = b;
                if (byteToken[b] < 0) byteToken[b] = id;
            } else {
                kind[id] = -1;
                textPieces.putIfAbsent(p, id);
            }
        }
        // Without an <unk> piece, a byte with no token falls back to id 0, as SentencePiece reserves it for unk.
        this.unk = Math.max(unkId, 0);
    }

    public String[] pieces() {
        return pieces.clone();
    }

    public float[] scores() {
        return scores.clone();
    }

    /** The id of the {@code <unk>} piece (0 when the vocabulary has none). */
    public int unk() {
        return unk;
    }

    /** True for pieces that are not text: BOS, EOS, {@code <unk>}, {@code <pad>}. */
    public boolean isControl(int id) {
        return kind[id] == -2;
    }

    /** True for the byte-fallback pieces {@code <0x00>}..{@code <0xFF>}. */
    public boolean isByte(int id) {
        return kind[id] >= 0;
    }

    /** The id of a text piece (not control, not a byte token), or -1. */
    int textPiece(String piece) {
        Integer id = textPieces.get(piece);
        return id == null ? -1 : id;
    }

    @Override
    public int[] encode(String text) {
        if (text.isEmpty()) return new int[0];
        String normalized = SPACE + text.replace(' ', SPACE);
        int[] symbols = new int[normalized.length() * 4];
        int n = 0;
        for (int i = 0; i < normalized.length(); ) {
            int cp = normalized.codePointAt(i);
            int len = Character.charCount(cp);
            Integer id = textPieces.get(normalized.substring(i, i + len));
            if (id != null) {
                symbols[n++] = id;
            } else {
                for (byte b : normalized.substring(i, i + len).getBytes(StandardCharsets.UTF_8)) {
                    int t = byteToken[b & 0xFF];
                    symbols[n++] = t >= 0 ? t : unk;
                }
            }
            i += len;
        }
        return BpeMerger.merge(Arrays.copyOf(symbols, n), this::findMerge);
    }

    private BpeMerger.Merge findMerge(int left, int right) {
        if (kind[left] != -1 || kind[right] != -1) return null;
        Integer merged = textPieces.get(pieces[left] + pieces[right]);
        // 0.0 - score: higher scores merge first, and -0.0 ties with 0.0 as in llama2.c's float comparison.
        return merged == null ? null : new BpeMerger.Merge(merged, 0.0 - scores[merged]);
    }

    @Override
    public String decode(int[] ids) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        boolean first = true;
        for (int id : ids) {
            if (id < 0 || id >= pieces.length) {
                throw new IllegalArgumentException("token id " + id + " outside the vocabulary of " + pieces.length);
            }
            if (kind[id] == -2) continue;
            if (kind[id] >= 0) {
                bytes.write(kind[id]);
            } else {
                String text = pieces[id].replace(SPACE, ' ');
                if (first && text.startsWith(" ")) text = text.substring(1);
                bytes.writeBytes(text.getBytes(StandardCharsets.UTF_8));
            }
            first = false;
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }

    @Override
    public int bos() {
        return bos;
    }

    @Override
    public int eos() {
        return eos;
    }

    @Override
    public int vocabSize() {
        return pieces.length;
    }

    @Override
    public String describe() {
        int byteTokens = 0;
        for (int t : byteToken) if (t >= 0) byteTokens++;
        return "SentencePiece BPE, " + pieces.length + " pieces, "
                + (byteTokens == 256 ? "byte fallback" : byteTokens + "/256 byte tokens");
    }

    /** The byte a {@code <0xNN>} piece stands for, or -1 for any other piece. */
    static int byteValue(String piece) {
        if (piece.length() != 6 || !piece.startsWith("<0x") || piece.charAt(5) != '>') return -1;
        int hi = Character.digit(piece.charAt(3), 16), lo = Character.digit(piece.charAt(4), 16);
        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    }
}
