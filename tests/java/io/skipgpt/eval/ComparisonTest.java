package io.skipgpt.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Locale;
import org.junit.jupiter.api.Test;

/** Per-layer figures print the same on every machine: a dot, whatever the default locale. */
class ComparisonTest {
    @Test
    void numbersIgnoreTheLocale() {
        Locale before = Locale.getDefault();
        try {
            Locale.setDefault(Locale.GERMANY);
            assertEquals("0.500 1.000 0.125", Comparison.numbers(new double[] {0.5, 1, 0.125}, 3));
            assertEquals("", Comparison.numbers(new double[0], 2));
        } finally {
            Locale.setDefault(before);
        }
    }
}
