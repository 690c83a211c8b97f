package io.skipgpt.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.testing.SharedData;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** static-skip --method cosine on the real model: the printed set has k modules and its perplexity. */
class StaticSkipCosineCliTest {
    @Test
    void cosineMethodPrintsScoresAndASkipList() {
        Path model = SharedData.require("models/stories260K/stories260K.gguf");
        Path calib = SharedData.require("text/tinystories_valid_part2.txt");
        CliTest.Run r = CliTest.run("static-skip", "--model", model.toString(), "--calib", calib.toString(),
                "--calib-chars", "4000", "--sparsity", "0.3", "--method", "cosine", "--ctx", "512", "--device", "cpu");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("mean cos(input, output) over"), r.err());
        Matcher m = Pattern.compile("--skip (\\S+)\\s+\\(calibration ppl ([0-9.]+)").matcher(r.out());
        assertTrue(m.find(), r.out());
        assertEquals(3, m.group(1).split(",").length, "round(0.3 x 10) modules: " + m.group(1));
        assertTrue(Double.parseDouble(m.group(2)) > 3, r.out());
        CliTest.Run bad = CliTest.run("static-skip", "--model", model.toString(), "--calib", calib.toString(),
                "--sparsity", "0.3", "--method", "magic", "--device", "cpu");
        assertNotEquals(0, bad.code());
        assertTrue(bad.err().contains("--method must be ppl or cosine"), bad.err());
    }
}
