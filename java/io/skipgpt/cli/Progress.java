package io.skipgpt.cli;

/**
 * Progress lines on stderr for long work, at most one a second so logs stay readable: "label 1234 unit
 * (567/s)". Nothing is printed for work that finishes within the first second.
 */
final class Progress {
    private final String label;
    private final String unit;
    private final long start = System.nanoTime();
    private long lastPrint = start;

    Progress(String label, String unit) {
        this.label = label;
        this.unit = unit;
    }

    void update(long done) {
        long now = System.nanoTime();
        if (now - lastPrint < 1_000_000_000L) return;
        lastPrint = now;
        double seconds = (now - start) / 1e9;
        System.err.printf("%s %d %s (%.0f/s)%n", label, done, unit, done / seconds);
    }
}
