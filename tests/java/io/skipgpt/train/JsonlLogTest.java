package io.skipgpt.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JsonlLogTest {
    @TempDir
    Path dir;

    @Test
    void appendsOneCompactObjectPerLineReadableAtOnce() throws IOException {
        Path file = dir.resolve("train.jsonl");
        try (JsonlLog log = JsonlLog.create(file)) {
            log.append(record(0, 2.5));
            // Visible before close: each line is handed to the OS when appended.
            assertEquals("{\"step\":0,\"loss\":2.5}\n", Files.readString(file));
            log.append(record(1, Double.NaN));
        }
        assertEquals("{\"step\":0,\"loss\":2.5}\n{\"step\":1,\"loss\":NaN}\n", Files.readString(file));
        try (JsonlLog log = JsonlLog.create(file)) {
            log.append(record(7, 1));
        }
        assertEquals("{\"step\":7,\"loss\":1.0}\n", Files.readString(file), "create starts a new log");
    }

    @Test
    void resumingDropsTheStepsAfterTheCheckpointAndATornLine() throws IOException {
        Path file = dir.resolve("train.jsonl");
        try (JsonlLog log = JsonlLog.create(file)) {
            for (int step = 0; step < 6; step++) {
                log.append(record(step, 10 - step));
                if (step == 2) {
                    JsonObject eval = new JsonObject();
                    eval.addProperty("step", 2);
                    eval.addProperty("heldout_loss", 7.5);
                    log.append(eval);
                }
            }
        }
        Files.writeString(file, Files.readString(file) + "{\"step\":6,\"lo", StandardOpenOption.TRUNCATE_EXISTING);
        // The checkpoint holds 3 finished steps: the resumed run logs steps 3, 4, ... again.
        try (JsonlLog log = JsonlLog.resume(file, 3)) {
            log.append(record(3, 0.5));
        }
        assertEquals("""
                {"step":0,"loss":10.0}
                {"step":1,"loss":9.0}
                {"step":2,"loss":8.0}
                {"step":2,"heldout_loss":7.5}
                {"step":3,"loss":0.5}
                """, Files.readString(file));
    }

    @Test
    void resumingPastTheEndKeepsEverythingButATornLine() throws IOException {
        Path file = dir.resolve("train.jsonl");
        Files.writeString(file, "{\"step\":0}\n{\"note\":\"no step\"}\n\n{\"step\":1}\n{\"st");
        try (JsonlLog log = JsonlLog.resume(file, 100)) {
            log.append(record(2, 1));
        }
        assertEquals("{\"step\":0}\n{\"note\":\"no step\"}\n\n{\"step\":1}\n{\"step\":2,\"loss\":1.0}\n", Files.readString(file));
        Path fresh = dir.resolve("fresh.jsonl");
        try (JsonlLog log = JsonlLog.resume(fresh, 5)) {
            log.append(record(5, 1));
        }
        assertEquals("{\"step\":5,\"loss\":1.0}\n", Files.readString(fresh));
    }

    @Test
    void aCorruptLineBeforeTheCutIsAnError() throws IOException {
        Path file = dir.resolve("train.jsonl");
        Files.writeString(file, "{\"step\":0}\n[1, 2]\n{\"step\":1}\n");
        IOException e = assertThrows(IOException.class, () -> JsonlLog.resume(file, 1));
        assertEquals(file + ":2: not a JSON object", e.getMessage());
        Files.writeString(file, "{\"step\":\"soon\"}\n");
        e = assertThrows(IOException.class, () -> JsonlLog.resume(file, 1));
        assertTrue(e.getMessage().startsWith(file + ":1: not a JSON object with a numeric step"), e.getMessage());
    }

    private static JsonObject record(long step, double loss) {
        JsonObject o = new JsonObject();
        o.addProperty("step", step);
        o.addProperty("loss", loss);
        return o;
    }
}
