package io.skipgpt.cli;

/**
 * Progress of work of known size on stderr, at most one line a second: "what: done/total unit, rate/s, ETA m:ss".
 * Nothing is printed for work that finishes within the first second.
 */
final class EtaProgress {
    private final long total;
    private final String unit;
    private final long start = System.nanoTime();
    private long lastPrint = start;

    EtaProgress(long total, String unit) {
        this.total = total;
        this.unit = unit;
    }

    void update(long done, String what) {
        long now = System.nanoTime();
        if (now - lastPrint < 1_000_000_000L || done <= 0) return;
        lastPrint = now;
        double seconds = (now - start) / 1e9;
        double rate = done / seconds;
        System.err.printf("%s: %d/%d %s, %.1f/s, ETA %s%n", what, done, total, unit, rate,
                clock((long) Math.ceil((total - done) / rate)));
    }

    static String clock(long seconds) {
        return seconds >= 3600 ? String.format("%d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60)
                : String.format("%d:%02d", seconds / 60, seconds % 60);
    }
}
