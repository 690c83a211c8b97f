package io.skipgpt.io;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.skipgpt.tensor.Tensor;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The safetensors format: an 8-byte little-endian header length N, a JSON header of N bytes mapping each tensor
 * name to {"dtype", "shape", "data_offsets": [begin, end)} (offsets from the end of the header) plus an
 * optional "__metadata__" map of strings, then the raw little-endian data. F32, F16 and BF16 are read; files are
 * written in F32 (F16/BF16 for tests and special uses).
 */
public final class Safetensors {
    /** Largest header accepted: real headers are kilobytes; a bigger claim is corruption. */
    private static final long MAX_HEADER = 100L << 20;
    private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();

    private Safetensors() {}

    /** A parsed file: tensors in header order and the metadata strings. */
    record Contents(List<StoredTensor> tensors, Map<String, String> metadata) {}

    /** One tensor to write: {@code rowOrder}, when not null, writes row {@code rowOrder[r]} of it as row r. */
    public record Named(String name, Tensor tensor, int[] rowOrder) {}

    /** Reads every tensor of a file as float32 (the caller closes them), in the file's order. */
    public static Map<String, Tensor> readAll(Path file) throws ModelFormatException {
        Map<String, Tensor> out = new LinkedHashMap<>();
        try (MappedFile f = MappedFile.open(file)) {
            for (StoredTensor t : parse(f).tensors()) out.put(t.name(), t.load());
            return out;
        } catch (ModelFormatException | RuntimeException e) {
            out.values().forEach(Tensor::close);
            throw e;
        }
    }

    /** The "__metadata__" strings of a file (empty when it has none). */
    public static Map<String, String> metadata(Path file) throws ModelFormatException {
        try (MappedFile f = MappedFile.open(file)) {
            return parse(f).metadata();
        }
    }

    /** Writes float32 tensors (row-major, any shapes) and metadata strings, atomically. */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
        List<Named> list = new ArrayList<>();
        tensors.forEach((name, t) -> list.add(new Named(name, t, null)));
        write(file, list, metadata);
    }

    /** As {@link #write(Path, Map, Map)}, with each tensor's rows written in its own order (see {@link Named}). */
    public static void write(Path file, List<Named> tensors, Map<String, String> metadata) throws IOException {
        write(file, tensors, metadata, StorageType.F32);
    }

    static Contents parse(MappedFile f) throws ModelFormatException {
        Path path = f.path;
        MappedFile.Cursor c = f.cursor(0);
        long n = c.i64("header length");
        if (n < 2 || n > MAX_HEADER) throw new ModelFormatException(path, "corrupt: header length " + n);
        String text = c.utf8(n, "header");
        JsonObject header;
        try {
            JsonElement e = JsonParser.parseString(text);
            if (!e.isJsonObject()) throw new JsonParseException("not an object");
            header = e.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new ModelFormatException(path, "corrupt header: " + e.getMessage(), e);
        }
        long dataStart = 8 + n;
        List<StoredTensor> tensors = new ArrayList<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> entry : header.entrySet()) {
            String name = entry.getKey();
            try {
                JsonObject o = entry.getValue().getAsJsonObject();
                if (name.equals("__metadata__")) {
                    for (Map.Entry<String, JsonElement> m : o.entrySet()) metadata.put(m.getKey(), m.getValue().getAsString());
                    continue;
                }
                String dtype = o.get("dtype").getAsString();
                StorageType type = switch (dtype) {
                    case "F32" -> StorageType.F32;
                    case "F16" -> StorageType.F16;
                    case "BF16" -> StorageType.BF16;
                    default -> throw new ModelFormatException(path, "tensor '" + name + "' has dtype " + dtype
                            + ", which is not supported (F32, F16, BF16)");
                };
                JsonArray dims = o.get("shape").getAsJsonArray();
                long[] shape = new long[dims.size()];
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = dims.get(i).getAsLong();
                    if (shape[i] < 0) throw new IllegalStateException("negative dimension");
                }
                JsonArray offsets = o.get("data_offsets").getAsJsonArray();
                long begin = offsets.get(0).getAsLong(), end = offsets.get(1).getAsLong();
                StoredTensor t = new StoredTensor(name, type, shape, f, dataStart + begin);
                if (offsets.size() != 2 || begin < 0 || end - begin != t.bytes()) {
                    throw new ModelFormatException(path, "corrupt header: tensor '" + name + "' of shape "
                            + Arrays.toString(shape) + " has data_offsets " + offsets);
                }
                if (dataStart + end > f.size) {
                    throw new ModelFormatException(path, "truncated: tensor '" + name + "' needs bytes ["
                            + (dataStart + begin) + ", " + (dataStart + end) + ") but the file has " + f.size);
                }
                tensors.add(t);
            } catch (RuntimeException e) {
                throw new ModelFormatException(path, "corrupt header: entry '" + name + "' is malformed (" + e + ")", e);
            }
        }
        return new Contents(tensors, metadata);
    }

    /**
     * Writes tensors in {@code type} with metadata, atomically; the header is padded to 8 bytes with spaces. The
     * metadata go in key order, whatever map holds them (Map.of's order changes from one process to the next), so
     * the same tensors and metadata always make the same bytes.
     */
    static void write(Path file, List<Named> tensors, Map<String, String> metadata, StorageType type)
            throws IOException {
        JsonObject header = new JsonObject();
        if (!metadata.isEmpty()) {
            JsonObject m = new JsonObject();
            new TreeMap<>(metadata).forEach(m::addProperty);
            header.add("__metadata__", m);
        }
        long offset = 0;
        for (Named t : tensors) {
            JsonObject o = new JsonObject();
            o.addProperty("dtype", type.name());
            JsonArray shape = new JsonArray();
            for (int d : t.tensor().shape()) shape.add(d);
            o.add("shape", shape);
            long bytes = type.bytesFor(t.tensor().size());
            JsonArray offsets = new JsonArray();
            offsets.add(offset);
            offsets.add(offset + bytes);
            o.add("data_offsets", offsets);
            header.add(t.name(), o);
            offset += bytes;
        }
        byte[] json = GSON.toJson(header).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        byte[] headerBytes = Arrays.copyOf(json, padded);
        Arrays.fill(headerBytes, json.length, padded, (byte) ' ');
        AtomicFiles.write(file, stream -> {
            LeOutput out = new LeOutput(stream);
            out.i64(padded);
            out.bytes(headerBytes);
            for (Named t : tensors) {
                if (t.rowOrder() == null) out.tensor(t.tensor(), type);
                else out.tensorRows(t.tensor(), t.rowOrder(), type);
            }
        });
    }
}
