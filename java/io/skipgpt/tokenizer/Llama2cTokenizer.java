package io.skipgpt.tokenizer;

import io.skipgpt.io.AtomicFiles;
import io.skipgpt.io.ModelFormatException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * llama2.c's tokenizer file ({@code tokenizer.bin}, {@code tok512.bin}): int32 max_token_length, then per token
 * float32 score, int32 byte length and the UTF-8 bytes, little-endian, up to the end of the file. BOS is 1 and EOS
 * is 2. llama2.c's exporter writes pieces with a plain space for SentencePiece's "▁" and BOS/EOS as "\n<s>\n" and
 * "\n</s>\n"; reading maps them back to SentencePiece pieces and writing maps them again.
 */
public final class Llama2cTokenizer {
    static final int BOS = 1;
    static final int EOS = 2;

    private Llama2cTokenizer() {}

    public static SentencePieceBpe read(Path file) throws ModelFormatException {
        byte[] data;
        try {
            data = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(file, "no such file", e);
        } catch (IOException | SecurityException e) {
            throw new ModelFormatException(file, "cannot read: " + e, e);
        }
        ByteBuffer in = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        List<String> pieces = new ArrayList<>();
        List<Float> scores = new ArrayList<>();
        try {
            int maxLength = in.getInt();
            while (in.hasRemaining()) {
                float score = in.getFloat();
                int length = in.getInt();
                if (length < 0 || length > maxLength || length > in.remaining()) {
                    throw new ModelFormatException(file, "corrupt or truncated: token " + pieces.size()
                            + " claims " + length + " bytes (max token length " + maxLength + ", "
                            + in.remaining() + " bytes left)");
                }
                byte[] bytes = new byte[length];
                in.get(bytes);
                pieces.add(fromFile(new String(bytes, StandardCharsets.UTF_8), pieces.size()));
                scores.add(score);
            }
        } catch (BufferUnderflowException e) {
            throw new ModelFormatException(file, "truncated: file ends inside token " + pieces.size(), e);
        }
        if (pieces.size() <= EOS) {
            throw new ModelFormatException(file, "not a llama2.c tokenizer: only " + pieces.size() + " tokens");
        }
        float[] s = new float[scores.size()];
        for (int i = 0; i < s.length; i++) s[i] = scores.get(i);
        return new SentencePieceBpe(pieces.toArray(String[]::new), s, BOS, EOS);
    }

    /** Writes {@code t} in llama2.c's format; its BOS and EOS must be ids 1 and 2, as llama2.c assumes. */
    public static void write(Path file, SentencePieceBpe t) throws IOException {
        if (t.bos() != BOS || t.eos() != EOS) {
            throw new IllegalArgumentException("llama2.c tokenizers have BOS 1 and EOS 2, not " + t.bos() + " and "
                    + t.eos());
        }
        String[] pieces = t.pieces();
        float[] scores = t.scores();
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        int maxLength = 0;
        for (int i = 0; i < pieces.length; i++) {
            byte[] b = toFile(pieces[i], i).getBytes(StandardCharsets.UTF_8);
            maxLength = Math.max(maxLength, b.length);
            ByteBuffer entry = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            entry.putFloat(scores[i]).putInt(b.length);
            body.writeBytes(entry.array());
            body.writeBytes(b);
        }
        ByteBuffer head = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(maxLength);
        AtomicFiles.write(file, out -> {
            out.write(head.array());
            body.writeTo(out);
        });
    }

    private static String fromFile(String piece, int id) {
        if (id == BOS && piece.equals("\n<s>\n")) return "<s>";
        if (id == EOS && piece.equals("\n</s>\n")) return "</s>";
        return piece.replace(' ', SentencePieceBpe.SPACE);
    }

    private static String toFile(String piece, int id) {
        if (id == BOS && piece.equals("<s>")) return "\n<s>\n";
        if (id == EOS && piece.equals("</s>")) return "\n</s>\n";
        return piece.replace(SentencePieceBpe.SPACE, ' ');
    }
}
