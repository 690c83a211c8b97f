package io.skipgpt.eval;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * CPU time this process has used, all threads (Java and native: OpenMP, OpenBLAS), from {@code /proc/self/stat}
 * (user + system time in USER_HZ = 100 ticks per second, so a 10 ms resolution). Compared with wall time and the
 * cores available, it tells whether a benchmark had the machine to itself: on an idle machine a 2-thread run uses
 * close to 2 CPU seconds per second; other work pushes the share down. NaN where /proc is missing.
 */
final class ProcessCpu {
    private static final Path STAT = Path.of("/proc/self/stat");

    private ProcessCpu() {}

    static double seconds() {
        try {
            String stat = Files.readString(STAT);
            // the command name may hold spaces and parentheses: fields are counted after the last ')'
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return (Long.parseLong(f[11]) + Long.parseLong(f[12])) / 100.0;
        } catch (IOException | RuntimeException e) {
            return Double.NaN;
        }
    }
}
