package io.skipgpt.io;

import java.nio.file.Path;

/** A model, tokenizer or data file that cannot be used; the message names the file and what is wrong. */
public class ModelFormatException extends Exception {
    private static final long serialVersionUID = 1L;
    /** Transient: a Path is not serializable; the message keeps the file's name either way. */
    private final transient Path file;

    public ModelFormatException(Path file, String problem) {
        super(file + ": " + problem);
        this.file = file;
    }

    public ModelFormatException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
        this.file = file;
    }

    public Path file() {
        return file;
    }
}
