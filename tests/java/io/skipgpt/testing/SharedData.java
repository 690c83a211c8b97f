package io.skipgpt.testing;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/** Finds {@code ../shared/data} (or {@code $SKIPGPT_DATA}); tests that need it skip with a message when absent. */
public final class SharedData {
    private SharedData() {}

    public static Path root() {
        String env = System.getenv("SKIPGPT_DATA");
        return env != null && !env.isBlank() ? Path.of(env) : Path.of("..", "shared", "data");
    }

    /** The path of a file under the data root, skipping the calling test when it is missing. */
    public static Path require(String relative) {
        Path p = root().resolve(relative);
        assumeTrue(Files.exists(p), "shared data not found: " + p.toAbsolutePath()
                + " (set SKIPGPT_DATA to the shared/data folder to run this test)");
        return p;
    }
}
