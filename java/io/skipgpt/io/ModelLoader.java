package io.skipgpt.io;

import io.skipgpt.tokenizer.HfTokenizer;
import io.skipgpt.tokenizer.Llama2cTokenizer;
import io.skipgpt.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Loads a model whatever its format: a directory is a Hugging Face model, a file starting with "GGUF" (or named
 * *.gguf) is GGUF, any other *.bin is a llama2.c checkpoint. Weights come out float32, Q/K in adjacent-pair order.
 */
public final class ModelLoader {
    private ModelLoader() {}

    /**
     * Loads {@code model}; {@code tokenizerOverride} (nullable) replaces the model's own tokenizer: a
     * tokenizer.json, a directory holding one, a GGUF file (its embedded tokenizer) or a llama2.c tokenizer.bin.
     */
    public static LoadedModel load(Path model, Path tokenizerOverride) throws ModelFormatException {
        requireReadable(model);
        Tokenizer override = tokenizerOverride == null ? null : loadTokenizer(tokenizerOverride);
        LoadedModel m;
        if (Files.isDirectory(model)) {
            m = HfDirectory.read(model, override);
        } else if (isGguf(model)) {
            m = Gguf.read(model, override);
        } else if (model.getFileName().toString().endsWith(".bin")) {
            m = Llama2cCheckpoint.read(model, override);
        } else {
            throw new ModelFormatException(model, "unrecognised model format: expected a Hugging Face directory,"
                    + " a GGUF file or a llama2.c .bin checkpoint");
        }
        if (m.tokenizer().vocabSize() > m.config().vocabSize()) {
            m.close();
            throw new ModelFormatException(tokenizerOverride != null ? tokenizerOverride : model, "the tokenizer has "
                    + m.tokenizer().vocabSize() + " tokens but the model's vocabulary has " + m.config().vocabSize());
        }
        return m;
    }

    /** Loads a tokenizer on its own: tokenizer.json (or its directory), a GGUF's embedded one, or llama2.c's. */
    public static Tokenizer loadTokenizer(Path path) throws ModelFormatException {
        requireReadable(path);
        if (Files.isDirectory(path) || path.getFileName().toString().endsWith(".json")) return HfTokenizer.load(path);
        if (isGguf(path)) return Gguf.readTokenizer(path);
        return Llama2cTokenizer.read(path);
    }

    private static void requireReadable(Path p) throws ModelFormatException {
        if (!Files.exists(p)) throw new ModelFormatException(p, "no such file or directory");
        if (!Files.isReadable(p)) throw new ModelFormatException(p, "not readable (permission denied)");
    }

    private static boolean isGguf(Path file) throws ModelFormatException {
        if (file.getFileName().toString().endsWith(".gguf")) return true;
        try (InputStream in = Files.newInputStream(file)) {
            return new String(in.readNBytes(4), StandardCharsets.ISO_8859_1).equals("GGUF");
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read: " + e, e);
        }
    }
}
