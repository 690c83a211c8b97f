package io.skipgpt.infer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class SamplerTest {
    private static final float[] LOGITS = {1f, 3f, 2.5f, -1f, 0f, 2.9f};

    @Test
    void greedyTakesTheArgmax() {
        assertEquals(1, Sampler.greedy().sample(LOGITS));
        assertEquals(1, new Sampler(0f, 0.5f, 7).sample(LOGITS));
    }

    @Test
    void sameSeedSameTokens() {
        int[] a = draw(new Sampler(1f, 1f, 99), 50);
        int[] b = draw(new Sampler(1f, 1f, 99), 50);
        assertArrayEquals(a, b);
        Set<Integer> seen = new HashSet<>();
        for (int t : a) seen.add(t);
        assertTrue(seen.size() > 2, "temperature 1 should explore several tokens, saw " + seen);
    }

    @Test
    void topPKeepsOnlyTheNucleus() {
        // Probabilities at T=1: token 1 (e^3), 5 (e^2.9), 2 (e^2.5) carry ~86% of the mass.
        for (int t : draw(new Sampler(1f, 0.5f, 3), 200)) assertTrue(t == 1 || t == 5, "token " + t + " outside top-p 0.5");
    }

    @Test
    void lowTemperatureIsNearlyGreedy() {
        int ones = 0;
        for (int t : draw(new Sampler(0.01f, 1f, 5), 100)) if (t == 1) ones++;
        assertTrue(ones >= 99, "at T=0.01 the argmax should win almost always, got " + ones);
    }

    @Test
    void rejectsBadParameters() {
        assertThrows(IllegalArgumentException.class, () -> new Sampler(-1f, 1f, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(1f, 0f, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(1f, 1.5f, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(Float.NaN, 1f, 0));
    }

    private static int[] draw(Sampler s, int n) {
        int[] out = new int[n];
        for (int i = 0; i < n; i++) out[i] = s.sample(LOGITS);
        return out;
    }
}
