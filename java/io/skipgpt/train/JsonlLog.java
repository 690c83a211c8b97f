package io.skipgpt.train;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A JSON Lines log: one JSON object per line, for per-step training records. Each line goes to the operating
 * system as soon as it is appended (no buffering in the JVM; no fsync either, a log is not worth one per step).
 * Non-finite numbers are written as {@code NaN} / {@code Infinity}, as Python's json module does, so a diverging
 * loss is logged rather than crashing the run.
 */
public final class JsonlLog implements Closeable {
    private static final Gson GSON = new GsonBuilder().serializeSpecialFloatingPointValues().disableHtmlEscaping().create();

    private final FileChannel channel;

    private JsonlLog(FileChannel channel) {
        this.channel = channel;
    }

    /** A new, empty log (an existing file is emptied). */
    public static JsonlLog create(Path file) throws IOException {
        return new JsonlLog(FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING));
    }

    /**
     * Reopens the log of a run resumed from a checkpoint, whose next logged step is {@code nextStep}. The log is
     * cut before its first line with a {@code "step"} of {@code nextStep} or more: that line and all after it were
     * written after the checkpoint and will be written again. A last line without its newline (the process died
     * while writing it) is dropped too. A missing file starts a new log.
     */
    public static JsonlLog resume(Path file, long nextStep) throws IOException {
        if (!Files.exists(file)) return create(file);
        byte[] bytes = Files.readAllBytes(file);
        int keep = 0; // bytes of the lines kept
        int line = 0;
        for (int start = 0; start < bytes.length; ) {
            int end = start;
            while (end < bytes.length && bytes[end] != '\n') end++;
            if (end == bytes.length) break; // torn last line
            line++;
            Long step = step(file, line, new String(bytes, start, end - start, StandardCharsets.UTF_8));
            if (step != null && step >= nextStep) break;
            start = end + 1;
            keep = start;
        }
        FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE);
        try {
            channel.truncate(keep);
            channel.position(keep);
        } catch (IOException e) {
            channel.close();
            throw e;
        }
        return new JsonlLog(channel);
    }

    /** The line's "step", or null when it has none (blank lines and records without a step are kept as they are). */
    private static Long step(Path file, int line, String text) throws IOException {
        if (text.isBlank()) return null;
        try {
            JsonElement e = JsonParser.parseString(text);
            if (!e.isJsonObject()) throw new IOException(file + ":" + line + ": not a JSON object");
            JsonElement step = e.getAsJsonObject().get("step");
            return step == null ? null : step.getAsLong();
        } catch (JsonParseException | IllegalStateException | UnsupportedOperationException | NumberFormatException e) {
            throw new IOException(file + ":" + line + ": not a JSON object with a numeric step (" + e.getMessage() + ")", e);
        }
    }

    /** Appends the record as one line. */
    public void append(JsonObject record) throws IOException {
        ByteBuffer bytes = ByteBuffer.wrap((GSON.toJson(record) + "\n").getBytes(StandardCharsets.UTF_8));
        while (bytes.hasRemaining()) channel.write(bytes);
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
