package io.skipgpt.io;

import static io.skipgpt.io.TestModels.assertMessage;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.skipgpt.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {
    @TempDir
    Path dir;

    private static Tensor random(Random rnd, int... shape) {
        Tensor t = Tensor.f32(shape);
        float[] v = new float[(int) t.size()];
        for (int i = 0; i < v.length; i++) v[i] = rnd.nextFloat() * 4 - 2;
        t.copyFrom(v);
        return t;
    }

    /** A file written by hand: 8-byte header length, JSON header, data. */
    private Path handWritten(String name, String header, byte[] data) throws Exception {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(data);
        return Files.write(dir.resolve(name), b.array());
    }

    @Test
    void writtenTensorsAndMetadataReadBackBitwise() throws Exception {
        Random rnd = new Random(21);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        tensors.put("a.weight", random(rnd, 7, 5));
        tensors.put("norm", random(rnd, 11));
        tensors.put("cube", random(rnd, 2, 3, 4));
        Path file = dir.resolve("x.safetensors");
        Safetensors.write(file, tensors, Map.of("format", "pt", "note", "ü"));
        assertEquals(0, (8 + ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN).getLong()) % 8);
        Map<String, Tensor> back = Safetensors.readAll(file);
        assertEquals(List.copyOf(tensors.keySet()), List.copyOf(back.keySet()));
        for (String k : tensors.keySet()) {
            assertArrayEquals(tensors.get(k).shape(), back.get(k).shape());
            assertArrayEquals(tensors.get(k).toFloatArray(), back.get(k).toFloatArray());
        }
        assertEquals(Map.of("format", "pt", "note", "ü"), Safetensors.metadata(file));
        tensors.values().forEach(Tensor::close);
        back.values().forEach(Tensor::close);
    }

    /** The metadata's map order does not reach the file: the same content makes the same bytes. */
    @Test
    void metadataInAnyOrderMakeTheSameBytes() throws Exception {
        try (Tensor t = random(new Random(3), 2, 3)) {
            Map<String, String> forward = new LinkedHashMap<>(), backward = new LinkedHashMap<>();
            for (String k : List.of("dim", "format", "layers", "zeta")) forward.put(k, k.toUpperCase());
            for (String k : List.of("zeta", "layers", "format", "dim")) backward.put(k, k.toUpperCase());
            Path a = dir.resolve("a.safetensors"), b = dir.resolve("b.safetensors");
            Safetensors.write(a, Map.of("t", t), forward);
            Safetensors.write(b, Map.of("t", t), backward);
            assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b));
        }
    }

    @Test
    void halfAndBfloatTensorsAreDecoded() throws Exception {
        ByteBuffer data = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
        data.putShort((short) 0x3C00).putShort((short) 0xC000).putShort((short) 0x3555); // F16 1, -2, 0.33325195
        data.putShort((short) 0x3F80).putShort((short) 0xC049).putShort((short) 0x4780); // BF16 1, -3.140625, 65536
        Path file = handWritten("h.safetensors", "{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,3],\"data_offsets\":[6,12]}}", data.array());
        Map<String, Tensor> t = Safetensors.readAll(file);
        assertArrayEquals(new float[] {1f, -2f, 0.333251953125f}, t.get("h").toFloatArray());
        assertArrayEquals(new float[] {1f, -3.140625f, 65536f}, t.get("b").toFloatArray());
        assertArrayEquals(new int[] {1, 3}, t.get("b").shape());
        t.values().forEach(Tensor::close);

        try (Tensor x = random(new Random(2), 4, 6)) {
            Path f16 = dir.resolve("f16.safetensors");
            Safetensors.write(f16, List.of(new Safetensors.Named("x", x, null)), Map.of(), StorageType.F16);
            try (Tensor back = Safetensors.readAll(f16).get("x")) {
                float[] v = x.toFloatArray(), got = back.toFloatArray();
                for (int i = 0; i < v.length; i++) assertEquals(StorageType.halfToFloat(StorageType.floatToHalf(v[i]) & 0xFFFF), got[i]);
            }
        }
    }

    @Test
    void badFilesNameTheFileAndTheProblem() throws Exception {
        Path good = dir.resolve("good.safetensors");
        try (Tensor x = random(new Random(3), 10, 10)) {
            Safetensors.write(good, Map.of("x", x), Map.of());
        }
        byte[] all = Files.readAllBytes(good);
        Path cut = dir.resolve("cut.safetensors");
        Files.write(cut, Arrays.copyOf(all, all.length - 10));
        assertMessage(assertThrows(ModelFormatException.class, () -> Safetensors.readAll(cut)), cut,
                "truncated: tensor 'x' needs bytes");
        Path header = dir.resolve("header.safetensors");
        Files.write(header, Arrays.copyOf(all, 20));
        assertMessage(assertThrows(ModelFormatException.class, () -> Safetensors.readAll(header)), header,
                "truncated: header needs");
        Path json = handWritten("json.safetensors", "{\"x\": {\"dtype\": ", new byte[0]);
        assertMessage(assertThrows(ModelFormatException.class, () -> Safetensors.readAll(json)), json, "corrupt header");
        Path dtype = handWritten("i64.safetensors", "{\"x\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", new byte[8]);
        assertMessage(assertThrows(ModelFormatException.class, () -> Safetensors.readAll(dtype)), dtype,
                "tensor 'x' has dtype I64, which is not supported");
        Path offsets = handWritten("off.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[12]);
        assertMessage(assertThrows(ModelFormatException.class, () -> Safetensors.readAll(offsets)), offsets,
                "corrupt header: tensor 'x' of shape [3] has data_offsets [0,8]");
        Path shape = handWritten("shape.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":\"3\",\"data_offsets\":[0,12]}}", new byte[12]);
        assertMessage(assertThrows(ModelFormatException.class, () -> Safetensors.readAll(shape)), shape,
                "corrupt header: entry 'x' is malformed");
    }
}
