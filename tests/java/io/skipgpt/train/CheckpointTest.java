package io.skipgpt.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.skipgpt.tensor.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {
    @TempDir
    Path root;

    private final Map<String, Tensor> tensors = new LinkedHashMap<>();

    @AfterEach
    void closeTensors() {
        tensors.values().forEach(Tensor::close);
    }

    @Test
    void tensorsAndStateRoundTripBitExactly() throws IOException {
        Rng rng = new Rng(1);
        tensors.put("model.layers.0.router_attention.weight_predictor.weight", random(rng, 2, 3));
        tensors.put("model.layers.0.router_attention.weight_predictor.bias", random(rng, 2));
        tensors.put("optimizer.x.exp_avg", Tensor.of(new float[] {
                -0f, Float.MIN_VALUE, Float.intBitsToFloat(0x7fc01234), Float.NEGATIVE_INFINITY, Float.MAX_VALUE, 1e-40f}, 3, 2));
        tensors.put("scalar", Tensor.of(new float[] {42.5f}));
        tensors.put("empty", Tensor.f32(0, 4));
        Checkpoint.State state = state(17);

        Path dir = Checkpoint.save(root, state, tensors, 2);
        assertEquals(root.resolve("step-00000017"), dir);
        try (Checkpoint.Loaded loaded = Checkpoint.load(dir)) {
            assertEquals(List.copyOf(tensors.keySet()), List.copyOf(loaded.tensors().keySet()), "names in saved order");
            tensors.forEach((name, t) -> {
                Tensor back = loaded.tensors().get(name);
                assertArrayEquals(t.shape(), back.shape(), name);
                float[] a = t.toFloatArray();
                float[] b = back.toFloatArray();
                for (int i = 0; i < a.length; i++) {
                    assertEquals(Float.floatToRawIntBits(a[i]), Float.floatToRawIntBits(b[i]), name + "[" + i + "]");
                }
            });
            Checkpoint.State s = loaded.state();
            assertEquals(17, s.step());
            assertEquals(8, s.optimizerStep());
            assertEquals(new TokenDataset.Cursor(3, 41), s.data());
            assertArrayEquals(state.rng(), s.rng());
            assertEquals(state.hyper(), s.hyper());
            assertEquals(state.extra(), s.extra());
        }
    }

    @Test
    void tensorFileIsPlainSafetensors() throws IOException {
        tensors.put("w", Tensor.of(new float[] {1f, 2f, 3f, 4f, 5f, 6f}, 2, 3));
        tensors.put("b", Tensor.of(new float[] {-1f}, 1));
        Path file = Checkpoint.save(root, state(1), tensors, 1).resolve(Checkpoint.TENSORS_FILE);
        ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        long headerLength = bytes.getLong();
        assertEquals(0, headerLength % 8, "data 8-byte aligned");
        JsonObject header = JsonParser.parseString(new String(bytes.array(), 8, (int) headerLength, StandardCharsets.UTF_8)).getAsJsonObject();
        assertEquals("{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}", header.get("w").toString());
        assertEquals("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[24,28]}", header.get("b").toString());
        assertEquals(8 + headerLength + 28, bytes.limit());
        assertEquals(3f, bytes.getFloat((int) (8 + headerLength + 8)));
        assertEquals(-1f, bytes.getFloat((int) (8 + headerLength + 24)));
    }

    @Test
    void latestFindsTheHighestStepAndOldCheckpointsArePruned() throws IOException {
        assertTrue(Checkpoint.latest(root.resolve("none")).isEmpty());
        tensors.put("w", Tensor.f32(2));
        for (long step : new long[] {1, 2, 3}) {
            tensors.get("w").set(0, step);
            Checkpoint.save(root, state(step), tensors, 2);
        }
        assertEquals(List.of("step-00000002", "step-00000003"), listing());
        assertEquals(root.resolve("step-00000003"), Checkpoint.latest(root).orElseThrow());

        // Resuming from step 2 abandons step 3: saving step 2 again replaces it and removes the later one.
        tensors.get("w").set(0, 20);
        Checkpoint.save(root, state(2), tensors, 2);
        assertEquals(List.of("step-00000002"), listing());
        try (Checkpoint.Loaded loaded = Checkpoint.load(Checkpoint.latest(root).orElseThrow())) {
            assertEquals(20f, loaded.tensors().get("w").get(0));
        }
        Checkpoint.save(root, state(10), tensors, 1);
        assertEquals(List.of("step-00000010"), listing());
    }

    @Test
    void aSaveThatFailsHalfwayLeavesThePreviousCheckpoint() throws IOException {
        tensors.put("w", Tensor.of(new float[] {7f}, 1));
        Checkpoint.save(root, state(1), tensors, 1);
        // An interrupted thread makes the first write to the tensor file fail: a real error in the middle of a save.
        Thread.currentThread().interrupt();
        try {
            assertThrows(IOException.class, () -> Checkpoint.save(root, state(2), tensors, 1));
        } finally {
            Thread.interrupted();
        }
        assertEquals(List.of("step-00000001"), listing(), "no trace of the failed save");
        assertLoads(Checkpoint.latest(root).orElseThrow(), 1, 7f);
    }

    @Test
    void whatAKilledSaveLeavesBehindIsIgnoredThenCleanedUp() throws IOException {
        tensors.put("w", Tensor.of(new float[] {7f}, 1));
        Checkpoint.save(root, state(1), tensors, 1);
        Checkpoint.save(root, state(2), tensors, 1);
        // Killed while writing step 3: a temporary directory with a truncated tensor file and no state.
        Path partial = Files.createDirectory(root.resolve(".tmp-step-3-12345"));
        Files.write(partial.resolve(Checkpoint.TENSORS_FILE), new byte[] {16, 0, 0, 0});
        // Killed while re-saving step 2, between moving the old copy aside and renaming the new one in.
        Files.move(root.resolve("step-00000002"), root.resolve(".replaced-step-2-999"));
        Path found = Checkpoint.latest(root).orElseThrow();
        assertEquals(root.resolve(".replaced-step-2-999"), found);
        assertLoads(found, 2, 7f);

        Checkpoint.save(root, state(3), tensors, 2);
        assertEquals(List.of(".replaced-step-2-999", "step-00000003"), listing(), "the moved-aside copy still counts as step 2");
        Checkpoint.save(root, state(4), tensors, 2);
        assertEquals(List.of("step-00000003", "step-00000004"), listing());
    }

    @Test
    void corruptFilesAreNamedWithTheProblem() throws IOException {
        tensors.put("w", Tensor.of(new float[] {1f, 2f, 3f, 4f}, 4));
        Path dir = Checkpoint.save(root, state(5), tensors, 1);
        Path file = dir.resolve(Checkpoint.TENSORS_FILE);
        byte[] good = Files.readAllBytes(file);

        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(good.length - 6);
        }
        assertLoadFails(dir, file + ": truncated: tensor 'w' needs bytes [120, 136) but the file has 130");

        byte[] hugeHeader = good.clone();
        hugeHeader[5] = 1; // adds 2^40 to the header length
        Files.write(file, hugeHeader);
        long claimed = ByteBuffer.wrap(hugeHeader).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(1L << 40, claimed - ByteBuffer.wrap(good).order(ByteOrder.LITTLE_ENDIAN).getLong());
        assertTrue(loadError(dir).startsWith(file + ": ") && loadError(dir).contains("header"), loadError(dir));

        Files.write(file, new String(good, StandardCharsets.ISO_8859_1).replace("F32", "I64").getBytes(StandardCharsets.ISO_8859_1));
        assertTrue(loadError(dir).startsWith(file + ": ") && loadError(dir).contains("I64"), loadError(dir));

        Files.write(file, good);
        Path stateFile = dir.resolve(Checkpoint.STATE_FILE);
        String stateText = Files.readString(stateFile);
        Files.writeString(stateFile, stateText.substring(0, stateText.length() / 2));
        assertTrue(loadError(dir).startsWith(stateFile + ": not valid JSON"), loadError(dir));
        Files.writeString(stateFile, stateText.replace("\"optimizer_step\"", "\"optimiser_step\""));
        assertTrue(loadError(dir).startsWith(stateFile + ": malformed training state"), loadError(dir));
        Files.delete(stateFile);
        assertTrue(loadError(dir).contains(stateFile.toString()), loadError(dir));
    }

    @Test
    void rejectsNonFloatTensorsAndLeavesNothingBehind() throws IOException {
        tensors.put("ids", Tensor.i32(3));
        assertThrows(IllegalArgumentException.class, () -> Checkpoint.save(root, state(1), tensors, 1));
        assertEquals(List.of(), listing());
    }

    private static Checkpoint.State state(long step) {
        JsonObject hyper = new JsonObject();
        hyper.addProperty("lr", 2e-3);
        hyper.addProperty("alpha", 8);
        hyper.addProperty("schedule", "cosine");
        JsonObject extra = new JsonObject();
        JsonArray files = new JsonArray();
        files.add("data/train.txt");
        extra.add("files", files);
        extra.addProperty("fingerprint", 0x8000_0000_0000_0001L);
        return new Checkpoint.State(step, step / 2, new TokenDataset.Cursor(3, 41),
                new long[] {Long.MIN_VALUE, Long.MAX_VALUE, -1, 0, 0x9E3779B97F4A7C15L}, hyper, extra);
    }

    private static Tensor random(Rng rng, int... shape) {
        Tensor t = Tensor.f32(shape);
        for (int i = 0; i < t.size(); i++) t.set(i, (float) (rng.nextDouble() * 2 - 1));
        return t;
    }

    private List<String> listing() throws IOException {
        try (Stream<Path> s = Files.list(root)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static void assertLoads(Path dir, long step, float w0) throws IOException {
        try (Checkpoint.Loaded loaded = Checkpoint.load(dir)) {
            assertEquals(step, loaded.state().step());
            assertEquals(w0, loaded.tensors().get("w").get(0));
        }
    }

    private static void assertLoadFails(Path dir, String message) {
        assertEquals(message, loadError(dir));
    }

    private static String loadError(Path dir) {
        IOException e = assertThrows(IOException.class, () -> Checkpoint.load(dir).close());
        assertFalse(e.getMessage().isEmpty());
        return e.getMessage();
    }
}
