package io.skipgpt.cli;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.OffsetDateTime;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Where and when a benchmark ran, for the results file: date, machine (CPU model and count from /proc/cpuinfo,
 * the cores this JVM may use, memory, the load average at the start and, with {@link #addLoadAfter}, the end —
 * other work on the machine skews figures), Java version,
 * the commit ({@code git rev-parse HEAD}, "+dirty" with uncommitted changes, absent outside a checkout) and the
 * command line. {@link #append} adds one JSON object as one line.
 */
final class RunRecord {
    private RunRecord() {}

    /** @param resultsFile the file the record goes to: its own changes do not make the checkout "dirty" */
    static JsonObject describe(List<String> commandLine, Path resultsFile) {
        JsonObject o = new JsonObject();
        o.addProperty("date", OffsetDateTime.now().truncatedTo(ChronoUnit.SECONDS).toString());
        o.add("machine", machine());
        String commit = commit(resultsFile);
        if (commit != null) o.addProperty("commit", commit);
        JsonArray args = new JsonArray();
        args.add("skipgpt");
        commandLine.forEach(args::add);
        o.add("command", args);
        return o;
    }

    static JsonObject machine() {
        JsonObject m = new JsonObject();
        String model = null;
        int cpus = 0;
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("processor")) cpus++;
                if (model == null && line.startsWith("model name")) model = line.substring(line.indexOf(':') + 1).strip();
            }
        } catch (IOException e) {
            // not Linux: the JVM's view below still says something
        }
        m.addProperty("cpu", model != null ? model : System.getProperty("os.arch"));
        if (cpus > 0) m.addProperty("cpus", cpus);
        m.addProperty("cores_available", Runtime.getRuntime().availableProcessors());
        double load = loadAverage();
        if (!Double.isNaN(load)) m.addProperty("loadavg_1min", load);
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemTotal:")) {
                    long kb = Long.parseLong(line.replaceAll("[^0-9]", ""));
                    m.addProperty("memory_gib", Math.round(kb / 1048576.0 * 10) / 10.0);
                }
            }
        } catch (IOException | RuntimeException e) {
            // no memory figure on this system
        }
        m.addProperty("os", System.getProperty("os.name") + " " + System.getProperty("os.version"));
        m.addProperty("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        String blas = System.getenv("OPENBLAS_NUM_THREADS"), omp = System.getenv("OMP_NUM_THREADS");
        if (blas != null) m.addProperty("openblas_threads", blas);
        if (omp != null) m.addProperty("omp_threads", omp);
        return m;
    }

    /** Adds the load average at the end of the run beside the one {@link #describe} took at its start. */
    static void addLoadAfter(JsonObject record) {
        double load = loadAverage();
        if (!Double.isNaN(load)) record.getAsJsonObject("machine").addProperty("loadavg_1min_after", load);
    }

    private static double loadAverage() {
        try {
            return Double.parseDouble(Files.readString(Path.of("/proc/loadavg")).strip().split("\\s+")[0]);
        } catch (IOException | RuntimeException e) {
            return Double.NaN;
        }
    }

    /**
     * HEAD of the checkout in the working directory, with "+dirty" when tracked files other than {@code ignore}
     * differ from it; null without git.
     */
    static String commit(Path ignore) {
        String head = git("rev-parse", "HEAD");
        if (head == null || head.isEmpty()) return null;
        String status = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                ":(exclude)" + ignore.toAbsolutePath().normalize());
        return status != null && !status.isEmpty() ? head + "+dirty" : head;
    }

    private static String git(String... args) {
        try {
            String[] cmd = new String[args.length + 1];
            cmd[0] = "git";
            System.arraycopy(args, 0, cmd, 1, args.length);
            Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
            byte[] out;
            try (InputStream in = p.getInputStream()) {
                out = in.readAllBytes();
            }
            if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) return null;
            return new String(out, StandardCharsets.UTF_8).strip();
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    /** Appends {@code record} as one line to {@code file}, creating it (and its folder) when needed. */
    static void append(Path file, JsonObject record) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) Files.createDirectories(parent);
        String line = new GsonBuilder().disableHtmlEscaping().serializeSpecialFloatingPointValues().create().toJson(record) + "\n";
        Files.writeString(file, line, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }
}
