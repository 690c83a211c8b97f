package io.skipgpt.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

class RngTest {
    @Test
    void matchesTheSplitMix64ReferenceStream() {
        // Outputs of the reference C splitmix64 seeded with 1234567.
        Rng rng = new Rng(1234567);
        assertEquals(6457827717110365317L, rng.nextLong());
        assertEquals(3203168211198807973L, rng.nextLong());
        assertEquals(Long.parseUnsignedLong("9817491932198370423"), rng.nextLong());
    }

    @Test
    void sameSeedSameNumbersAndStateRoundTrips() {
        Rng a = new Rng(42);
        Rng b = new Rng(42);
        for (int i = 0; i < 100; i++) assertEquals(a.nextLong(), b.nextLong());
        a.nextInt(7);
        Rng resumed = new Rng(a.state());
        for (int i = 0; i < 100; i++) {
            assertEquals(a.nextDouble(), resumed.nextDouble());
            assertEquals(a.nextInt(1000), resumed.nextInt(1000));
        }
    }

    @Test
    void derivedStreamsDifferByKey() {
        assertEquals(Rng.derived(7, 3).nextLong(), Rng.derived(7, 3).nextLong());
        assertNotEquals(Rng.derived(7, 3).nextLong(), Rng.derived(7, 4).nextLong());
        assertNotEquals(Rng.derived(7, 3).nextLong(), Rng.derived(8, 3).nextLong());
    }

    @Test
    void nextIntStaysInRangeAndCoversIt() {
        Rng rng = new Rng(1);
        int[] counts = new int[5];
        for (int i = 0; i < 5000; i++) counts[rng.nextInt(5)]++;
        for (int c : counts) assertTrue(c > 850 && c < 1150, Arrays.toString(counts));
        assertThrows(IllegalArgumentException.class, () -> rng.nextInt(0));
    }

    @Test
    void shuffleIsADeterministicPermutation() {
        int[] a = new int[50];
        for (int i = 0; i < a.length; i++) a[i] = i;
        int[] b = a.clone();
        new Rng(9).shuffle(a);
        new Rng(9).shuffle(b);
        assertArrayEquals(a, b);
        int[] sorted = a.clone();
        Arrays.sort(sorted);
        for (int i = 0; i < sorted.length; i++) assertEquals(i, sorted[i]);
        assertNotEquals(Arrays.toString(sorted), Arrays.toString(a));
    }
}
