package io.skipgpt.io;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The shared data folder (real model stories260K, texts): {@code $SKIPGPT_DATA}, else {@code ../shared/data}
 * from the project root. Tests that need a file skip with a message when it is absent.
 */
public final class TestData {
    private TestData() {}

    public static Path root() {
        String env = System.getenv("SKIPGPT_DATA");
        return env != null && !env.isEmpty() ? Path.of(env) : Path.of("..", "shared", "data");
    }

    /** The data file at {@code relative}, or a skipped test when it is not there. */
    public static Path require(String relative) {
        Path p = root().resolve(relative);
        assumeTrue(Files.isRegularFile(p), "shared data file " + p.toAbsolutePath() + " is absent; skipping");
        return p;
    }

    public static Path stories260KGguf() {
        return require("models/stories260K/stories260K.gguf");
    }

    public static Path stories260KBin() {
        return require("models/stories260K/stories260K.bin");
    }

    public static Path tok512() {
        return require("models/stories260K/tok512.bin");
    }

    public static Path tinyStoriesHead() {
        return require("text/tinystories_valid_head.txt");
    }
}
