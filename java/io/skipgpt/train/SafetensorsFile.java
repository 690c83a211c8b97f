package io.skipgpt.train;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.skipgpt.tensor.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Float32 tensors in the safetensors format, so checkpoints open in Python ({@code safetensors.safe_open}):
 * an 8-byte little-endian header length N, N bytes of JSON mapping each name to
 * {@code {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}} (offsets from the end of the header) plus
 * {@code "__metadata__"}, then the little-endian data, tensors back to back in header order.
 */
final class SafetensorsFile {
    /** The reference implementation's limit: a larger header claims corruption, not tensors. */
    private static final long MAX_HEADER = 100_000_000;
    private static final int CHUNK = 1 << 20;
    private static final String METADATA = "__metadata__";

    private SafetensorsFile() {}

    static void write(Path file, Map<String, Tensor> tensors) throws IOException {
        JsonObject header = new JsonObject();
        JsonObject metadata = new JsonObject();
        metadata.addProperty("format", "pt"); // what safetensors' PyTorch writer records; plain float tensors
        header.add(METADATA, metadata);
        long offset = 0;
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            String name = e.getKey();
            Tensor t = e.getValue();
            if (name.isEmpty() || name.equals(METADATA)) throw new IllegalArgumentException("bad tensor name '" + name + "'");
            if (t.dtype() != Tensor.DType.F32) throw new IllegalArgumentException(name + ": only F32 tensors are saved, got " + t.dtype());
            JsonObject entry = new JsonObject();
            entry.addProperty("dtype", "F32");
            JsonArray shape = new JsonArray();
            for (int d : t.shape()) shape.add(d);
            entry.add("shape", shape);
            JsonArray offsets = new JsonArray();
            offsets.add(offset);
            offsets.add(offset + t.bytes());
            entry.add("data_offsets", offsets);
            header.add(name, entry);
            offset += t.bytes();
        }
        byte[] json = new Gson().toJson(header).getBytes(StandardCharsets.UTF_8);
        // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK).order(ByteOrder.LITTLE_ENDIAN);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(padded).put(json);
            while (head.hasRemaining()) head.put((byte) ' ');
            writeFully(ch, head.flip());
            for (Tensor t : tensors.values()) {
                FloatBuffer src = t.floats();
                for (int at = 0; at < src.limit(); at += CHUNK / 4) {
                    int n = Math.min(CHUNK / 4, src.limit() - at);
                    buf.clear();
                    buf.asFloatBuffer().put(src.slice(at, n));
                    buf.limit(n * 4);
                    writeFully(ch, buf);
                }
            }
            ch.force(true);
        }
    }

    /** All tensors in header order; the caller closes them. Every inconsistency is an IOException naming the file. */
    static Map<String, Tensor> read(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) throw corrupt(file, "only " + size + " bytes, too short for a safetensors header");
            ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(file, ch, lengthBytes, 0);
            long headerLength = lengthBytes.flip().getLong();
            if (headerLength < 2 || headerLength > MAX_HEADER || headerLength > size - 8) {
                throw corrupt(file, "header length " + Long.toUnsignedString(headerLength) + " does not fit in a " + size + "-byte file");
            }
            ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLength);
            readFully(file, ch, headerBytes, 8);
            List<Entry> entries = parseHeader(file, new String(headerBytes.array(), StandardCharsets.UTF_8));
            checkLayout(file, entries, size - 8 - headerLength);

            Map<String, Tensor> tensors = new LinkedHashMap<>();
            ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK).order(ByteOrder.LITTLE_ENDIAN);
            try {
                for (Entry e : entries) {
                    Tensor t = Tensor.f32(e.shape);
                    tensors.put(e.name, t);
                    FloatBuffer dst = t.floats();
                    long start = 8 + headerLength + e.begin;
                    for (int at = 0; at < dst.limit(); at += CHUNK / 4) {
                        int n = Math.min(CHUNK / 4, dst.limit() - at);
                        buf.clear().limit(n * 4);
                        readFully(file, ch, buf, start + 4L * at);
                        dst.position(at);
                        dst.put(buf.flip().asFloatBuffer());
                    }
                }
            } catch (IOException | RuntimeException e) {
                tensors.values().forEach(Tensor::close);
                throw e;
            }
            return tensors;
        }
    }

    private record Entry(String name, int[] shape, long begin, long end) {}

    private static List<Entry> parseHeader(Path file, String json) throws IOException {
        JsonElement root;
        try {
            root = JsonParser.parseString(json);
        } catch (JsonParseException e) {
            throw corrupt(file, "header is not valid JSON (" + e.getMessage() + ")");
        }
        if (!root.isJsonObject()) throw corrupt(file, "header is not a JSON object");
        List<Entry> entries = new ArrayList<>();
        for (Map.Entry<String, JsonElement> e : root.getAsJsonObject().entrySet()) {
            if (e.getKey().equals(METADATA)) continue;
            entries.add(parseEntry(file, e.getKey(), e.getValue()));
        }
        return entries;
    }

    private static Entry parseEntry(Path file, String name, JsonElement value) throws IOException {
        try {
            JsonObject o = value.getAsJsonObject();
            String dtype = o.get("dtype").getAsString();
            if (!dtype.equals("F32")) throw corrupt(file, "tensor " + name + " has dtype " + dtype + ", checkpoints hold F32 only");
            JsonArray shapeJson = o.get("shape").getAsJsonArray();
            int[] shape = new int[shapeJson.size()];
            long elements = 1;
            for (int i = 0; i < shape.length; i++) {
                shape[i] = shapeJson.get(i).getAsInt();
                if (shape[i] < 0) throw corrupt(file, "tensor " + name + " has a negative dimension");
                elements *= shape[i];
            }
            JsonArray offsets = o.get("data_offsets").getAsJsonArray();
            long begin = offsets.get(0).getAsLong();
            long end = offsets.get(1).getAsLong();
            if (offsets.size() != 2 || begin < 0 || end - begin != 4 * elements) {
                throw corrupt(file, "tensor " + name + " has data_offsets " + offsets + " for shape " + Arrays.toString(shape));
            }
            return new Entry(name, shape, begin, end);
        } catch (IllegalStateException | UnsupportedOperationException | NullPointerException | IndexOutOfBoundsException
                | NumberFormatException e) {
            // Gson's accessors throw these when a field is missing or of the wrong kind.
            throw corrupt(file, "tensor " + name + " has a malformed header entry " + value);
        }
    }

    /** The tensors must tile the data exactly, as the reference reader demands: no gaps, overlaps or extra bytes. */
    private static void checkLayout(Path file, List<Entry> entries, long dataBytes) throws IOException {
        List<Entry> sorted = new ArrayList<>(entries);
        sorted.sort(Comparator.comparingLong(Entry::begin));
        long expected = 0;
        for (Entry e : sorted) {
            if (e.end > dataBytes) {
                throw corrupt(file, "truncated: tensor " + e.name + " ends at data byte " + e.end + " but the file holds " + dataBytes);
            }
            if (e.begin != expected) throw corrupt(file, "tensor " + e.name + " starts at data byte " + e.begin + ", expected " + expected);
            expected = e.end;
        }
        if (expected != dataBytes) throw corrupt(file, (dataBytes - expected) + " bytes after the last tensor");
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) ch.write(buf);
    }

    private static void readFully(Path file, FileChannel ch, ByteBuffer buf, long position) throws IOException {
        while (buf.hasRemaining()) {
            if (ch.read(buf, position + buf.position()) < 0) throw corrupt(file, "truncated while reading");
        }
    }

    static IOException corrupt(Path file, String problem) {
        return new IOException(file + ": " + problem);
    }
}
