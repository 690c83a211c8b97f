package io.skipgpt.tensor;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.Map;

/** The comparison every backend test makes: an op's output against the reference backend's. */
final class Compare {
    private Compare() {}

    /**
     * |got - want| <= tol * max(1, |want|) everywhere, and nothing left NaN by either backend (outputs start
     * poisoned, so an element a kernel skips fails); the op's largest error and tolerance go into {@code errors}.
     */
    static void check(String op, String label, double tol, Tensor want, Tensor got, String backend,
                      Map<String, double[]> errors) {
        double worst = 0;
        for (long i = 0; i < want.size(); i++) {
            float w = want.get(i), g = got.get(i);
            if (Float.isNaN(w) || Float.isNaN(g)) {
                fail(String.format("%s %s: element %d left unwritten (reference %s, %s %s)", op, label, i, w, backend, g));
            }
            double err = Math.abs((double) g - w) / Math.max(1, Math.abs(w));
            if (err > tol) {
                fail(String.format("%s %s: element %d is %s, reference %s (err %.2e > tol %.0e)", op, label, i, g, w, err, tol));
            }
            worst = Math.max(worst, err);
        }
        errors.merge(op, new double[] {worst, tol}, (a, b) -> new double[] {Math.max(a[0], b[0]), Math.max(a[1], b[1])});
    }
}
