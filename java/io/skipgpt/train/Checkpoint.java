package io.skipgpt.train;

import io.skipgpt.io.AtomicFiles;
import io.skipgpt.io.ModelFormatException;
import io.skipgpt.io.Safetensors;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.skipgpt.tensor.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Training checkpoints: a run's checkpoint root holds one directory per saved step, {@code step-00000100/}, each
 * with the named float32 tensors (trainable parameters, optimizer moments) in {@value #TENSORS_FILE} (safetensors,
 * readable by other tools) and the rest of the training state in {@value #STATE_FILE}.
 *
 * <p>Crash safety: a checkpoint is written completely (and synced) into a hidden temporary directory beside the
 * others, and only then renamed to its {@code step-N} name, so every {@code step-N} directory is complete; older
 * checkpoints are deleted only after the new one is in place. Re-saving an existing step moves the old directory
 * aside ({@code .replaced-step-N-*}) for the instant between the two renames; {@link #latest} accepts such a
 * directory when its step has no other copy. One writer per root.
 */
public final class Checkpoint {
    public static final String TENSORS_FILE = "tensors.safetensors";
    public static final String STATE_FILE = "state.json";

    private static final String FORMAT = "skipgpt-training-state";
    private static final int VERSION = 1;
    private static final Pattern STEP_DIR = Pattern.compile("step-(\\d+)");
    private static final Pattern REPLACED_DIR = Pattern.compile("\\.replaced-step-(\\d+)-\\d+");
    private static final String TMP_PREFIX = ".tmp-step-";
    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().serializeSpecialFloatingPointValues().create();

    private Checkpoint() {}

    /**
     * Everything but the tensors. {@code step} counts the trainer's steps, {@code optimizerStep} the optimizer's
     * (they differ under gradient accumulation); {@code rng} holds the positions of the run's noise streams;
     * {@code hyper} the run's settings, {@code extra} anything else (null reads as empty).
     */
    public record State(long step, long optimizerStep, TokenDataset.Cursor data, long[] rng, JsonObject hyper, JsonObject extra) {
        public State {
            if (step < 0 || optimizerStep < 0) throw new IllegalArgumentException("steps must be >= 0, got " + step + " and " + optimizerStep);
            if (data == null) throw new IllegalArgumentException("a dataset cursor is required");
            rng = rng == null ? new long[0] : rng.clone();
            hyper = hyper == null ? new JsonObject() : hyper.deepCopy();
            extra = extra == null ? new JsonObject() : extra.deepCopy();
        }

        @Override
        public long[] rng() {
            return rng.clone();
        }
    }

    /** A loaded checkpoint; closing it closes its tensors. */
    public record Loaded(Path dir, State state, Map<String, Tensor> tensors) implements AutoCloseable {
        @Override
        public void close() {
            tensors.values().forEach(Tensor::close);
        }
    }

    /**
     * Saves a checkpoint of {@code state.step()} under {@code root} and returns its directory. Afterwards at most
     * {@code keep} checkpoints remain: this one and the newest older ones. Checkpoints of later steps are deleted
     * too: they belong to a run abandoned by resuming from an earlier checkpoint, and {@link #latest} must not
     * return them.
     */
    public static Path save(Path root, State state, Map<String, Tensor> tensors, int keep) throws IOException {
        if (keep < 1) throw new IllegalArgumentException("keep must be at least 1, got " + keep);
        Files.createDirectories(root);
        deleteLeftovers(root);
        Path target = root.resolve(String.format("step-%08d", state.step()));
        Path tmp = Files.createDirectory(freshName(root, TMP_PREFIX + state.step() + "-"));
        try {
            Safetensors.write(tmp.resolve(TENSORS_FILE), tensors, java.util.Map.of("format", FORMAT));
            writeState(tmp.resolve(STATE_FILE), state);
            syncDirectory(tmp);
            if (Files.exists(target)) {
                Path aside = freshName(root, ".replaced-step-" + state.step() + "-");
                Files.move(target, aside, StandardCopyOption.ATOMIC_MOVE);
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
                AtomicFiles.deleteTree(aside);
            } else {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            }
            syncDirectory(root);
        } catch (IOException | RuntimeException e) {
            try {
                AtomicFiles.deleteTree(tmp);
            } catch (IOException cleanup) {
                e.addSuppressed(cleanup);
            }
            throw e;
        }
        prune(root, state.step(), keep);
        return target;
    }

    /** The checkpoint of the highest step under {@code root}, if any. */
    public static Optional<Path> latest(Path root) throws IOException {
        TreeMap<Long, Path> all = checkpoints(root);
        return all.isEmpty() ? Optional.empty() : Optional.of(all.lastEntry().getValue());
    }

    /** Loads a checkpoint directory; a missing, truncated or inconsistent file is an IOException naming it. */
    public static Loaded load(Path dir) throws IOException {
        State state = readState(dir.resolve(STATE_FILE));
        Path tensorsFile = dir.resolve(TENSORS_FILE);
        if (!Files.isRegularFile(tensorsFile)) throw new NoSuchFileException(tensorsFile.toString(), null, "checkpoint has no tensor file");
        try {
            return new Loaded(dir, state, Safetensors.readAll(tensorsFile));
        } catch (ModelFormatException e) {
            throw new IOException(e.getMessage(), e);
        }
    }

    private static void writeState(Path file, State s) throws IOException {
        JsonObject o = new JsonObject();
        o.addProperty("format", FORMAT);
        o.addProperty("version", VERSION);
        o.addProperty("step", s.step());
        o.addProperty("optimizer_step", s.optimizerStep());
        JsonObject data = new JsonObject();
        data.addProperty("epoch", s.data().epoch());
        data.addProperty("position", s.data().position());
        o.add("dataset", data);
        JsonArray rng = new JsonArray();
        for (long r : s.rng()) rng.add(r);
        o.add("rng", rng);
        o.add("hyper", s.hyper());
        o.add("extra", s.extra());
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer bytes = ByteBuffer.wrap((GSON.toJson(o) + "\n").getBytes(StandardCharsets.UTF_8));
            while (bytes.hasRemaining()) ch.write(bytes);
            ch.force(true);
        }
    }

    private static State readState(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new NoSuchFileException(file.toString(), null, "checkpoint has no state file");
        JsonElement root;
        try {
            root = JsonParser.parseString(Files.readString(file));
        } catch (CharacterCodingException e) {
            throw corrupt(file, "not UTF-8 text");
        } catch (JsonParseException e) {
            throw corrupt(file, "not valid JSON (" + e.getMessage() + ")");
        }
        JsonElement format = root.isJsonObject() ? root.getAsJsonObject().get("format") : null;
        if (format == null || !format.isJsonPrimitive() || !FORMAT.equals(format.getAsString())) {
            throw corrupt(file, "not a " + FORMAT + " file");
        }
        JsonObject o = root.getAsJsonObject();
        try {
            if (o.get("version").getAsInt() != VERSION) throw corrupt(file, "version " + o.get("version") + ", this build reads " + VERSION);
            JsonObject data = o.getAsJsonObject("dataset");
            JsonArray rngJson = o.getAsJsonArray("rng");
            long[] rng = new long[rngJson.size()];
            for (int i = 0; i < rng.length; i++) rng[i] = rngJson.get(i).getAsLong();
            return new State(o.get("step").getAsLong(), o.get("optimizer_step").getAsLong(),
                    new TokenDataset.Cursor(data.get("epoch").getAsLong(), data.get("position").getAsInt()),
                    rng, o.getAsJsonObject("hyper"), o.getAsJsonObject("extra"));
        } catch (RuntimeException e) {
            // A missing field (null), a wrong kind (ClassCast, IllegalState), a bad number or a bad value.
            throw corrupt(file, "malformed training state (" + e + ")");
        }
    }

    /** Complete checkpoints by step: each {@code step-N}, or for a step without one a {@code .replaced-step-N-*}. */
    private static TreeMap<Long, Path> checkpoints(Path root) throws IOException {
        TreeMap<Long, Path> found = new TreeMap<>();
        if (!Files.isDirectory(root)) return found;
        List<Path> replaced = new ArrayList<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(root, Files::isDirectory)) {
            for (Path p : entries) {
                String name = p.getFileName().toString();
                Matcher m = STEP_DIR.matcher(name);
                if (m.matches()) found.put(Long.parseLong(m.group(1)), p);
                else if (REPLACED_DIR.matcher(name).matches()) replaced.add(p);
            }
        }
        for (Path p : replaced) {
            Matcher m = REPLACED_DIR.matcher(p.getFileName().toString());
            if (m.matches()) found.putIfAbsent(Long.parseLong(m.group(1)), p);
        }
        return found;
    }

    private static void prune(Path root, long saved, int keep) throws IOException {
        TreeMap<Long, Path> all = checkpoints(root);
        int kept = 0;
        for (Map.Entry<Long, Path> e : all.descendingMap().entrySet()) {
            if (e.getKey() > saved || (e.getKey() < saved && ++kept >= keep)) AtomicFiles.deleteTree(e.getValue());
        }
    }

    /** Removes what interrupted saves left: temporary directories, and replaced ones whose step was re-saved. */
    private static void deleteLeftovers(Path root) throws IOException {
        TreeMap<Long, Path> complete = checkpoints(root);
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(root)) {
            for (Path p : entries) {
                String name = p.getFileName().toString();
                boolean stale = name.startsWith(TMP_PREFIX) || (REPLACED_DIR.matcher(name).matches() && !complete.containsValue(p));
                if (stale) AtomicFiles.deleteTree(p);
            }
        }
    }

    /** A name under root that does not exist yet (one writer per root, so it stays free). */
    private static Path freshName(Path root, String prefix) {
        while (true) {
            Path p = root.resolve(prefix + ThreadLocalRandom.current().nextInt(1_000_000_000));
            if (!Files.exists(p)) return p;
        }
    }

    /** Makes a rename or the files of a directory durable; some file systems cannot sync a directory, then skip. */
    private static void syncDirectory(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException e) {
            // Not supported here: the rename is still atomic, only its durability across power loss is weaker.
        }
    }

    private static IOException corrupt(Path file, String problem) {
        return new IOException(file + ": " + problem);
    }
}
