package io.skipgpt.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class LrScheduleTest {
    @Test
    void constantIsConstant() {
        LrSchedule s = LrSchedule.constant(2e-3);
        assertEquals(2e-3, s.lr(0));
        assertEquals(2e-3, s.lr(1_000_000));
    }

    @Test
    void cosineWithWarmupAndFloor() {
        LrSchedule s = new LrSchedule.Cosine(2.0, 4, 12, 0.1);
        // Warm-up: peak * step / warmup.
        assertEquals(0.0, s.lr(0));
        assertEquals(0.5, s.lr(1));
        assertEquals(1.5, s.lr(3));
        assertEquals(2.0, s.lr(4));
        // Cosine over the 8 remaining steps: 2 * (0.1 + 0.9 * 0.5 * (1 + cos(pi * progress))).
        assertEquals(1.7363961030678927, s.lr(6), 1e-12); // progress 1/4
        assertEquals(1.1, s.lr(8), 1e-12); // progress 1/2
        assertEquals(0.2, s.lr(12), 1e-12);
        assertEquals(0.2, s.lr(500), 1e-12);
    }

    @Test
    void cosineWithoutWarmupStartsAtThePeakAndEndsAtZero() {
        LrSchedule s = LrSchedule.cosine(1e-3, 0, 4);
        assertEquals(1e-3, s.lr(0));
        assertEquals(0.5e-3, s.lr(2), 1e-15);
        assertEquals(0.0, s.lr(4), 1e-15);
    }

    @Test
    void rejectsBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.cosine(1, 5, 4));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.cosine(1, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new LrSchedule.Cosine(1, 0, 4, 1.5));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.constant(Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.constant(1).lr(-1));
    }

    @Test
    void gumbelTauGoesFromFiveToOneAndStays() {
        LinearAnneal tau = LinearAnneal.gumbelTau(5);
        assertEquals(5.0, tau.at(0));
        assertEquals(4.0, tau.at(1));
        assertEquals(3.0, tau.at(2));
        assertEquals(2.0, tau.at(3));
        assertEquals(1.0, tau.at(4));
        assertEquals(1.0, tau.at(9));
        assertEquals(5.0, tau.at(-3));
        assertEquals(5.0, LinearAnneal.gumbelTau(1).at(0));
        assertEquals(1.0, LinearAnneal.gumbelTau(1).at(1));
        assertEquals(4.5, new LinearAnneal(5, 1, 9).at(1));
    }
}
