package io.skipgpt.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class StorageTypeTest {
    private static int half(float f) {
        return StorageType.floatToHalf(f) & 0xFFFF;
    }

    private static int bf16(float f) {
        return StorageType.floatToBf16(f) & 0xFFFF;
    }

    @Test
    void halfDecodesKnownBitPatterns() {
        assertEquals(1f, StorageType.halfToFloat(0x3C00));
        assertEquals(-2f, StorageType.halfToFloat(0xC000));
        assertEquals(65504f, StorageType.halfToFloat(0x7BFF));
        assertEquals(0x1p-24f, StorageType.halfToFloat(0x0001)); // smallest subnormal
        assertEquals(0x1p-14f, StorageType.halfToFloat(0x0400)); // smallest normal
        assertEquals(0.333251953125f, StorageType.halfToFloat(0x3555));
        assertEquals(Float.floatToIntBits(-0f), Float.floatToIntBits(StorageType.halfToFloat(0x8000)));
        assertEquals(Float.POSITIVE_INFINITY, StorageType.halfToFloat(0x7C00));
        assertTrue(Float.isNaN(StorageType.halfToFloat(0x7E00)));
    }

    @Test
    void halfEncodingRoundsToNearestEven() {
        assertEquals(0x3C00, half(1f));
        assertEquals(0x7BFF, half(65504f));
        assertEquals(0x7BFF, half(65519f)); // below the midpoint to infinity
        assertEquals(0x7C00, half(65520f)); // the midpoint rounds to even: infinity
        assertEquals(0x3C00, half(1f + 0x1p-11f)); // tie between 0x3C00 and 0x3C01 -> even
        assertEquals(0x3C02, half(1f + 3 * 0x1p-11f)); // tie between 0x3C01 and 0x3C02 -> even
        assertEquals(0x0001, half(0x1p-24f));
        assertEquals(0x0000, half(0x1p-25f)); // tie between 0 and the smallest subnormal -> even (0)
        assertEquals(0x0001, half(0x1.8p-25f));
        assertEquals(0x0002, half(0x1.4p-23f)); // 2.5 x the smallest subnormal: tie -> even (2)
        assertEquals(0x0004, half(0x1.cp-23f)); // 3.5 x: tie -> even (4)
        assertEquals(0x8000, half(-0f));
        assertEquals(0xFC00, half(Float.NEGATIVE_INFINITY));
        assertTrue(Float.isNaN(StorageType.halfToFloat(half(Float.NaN))));
        for (int h = 0; h < 0x10000; h++) {
            float f = StorageType.halfToFloat(h);
            if (!Float.isNaN(f)) assertEquals(h, half(f), "half " + Integer.toHexString(h));
        }
    }

    @Test
    void bf16KeepsTheTopBitsRoundingToNearestEven() {
        assertEquals(0x3F80, bf16(1f));
        assertEquals(0x3F80, bf16(1f + 0x1p-8f)); // tie -> even
        assertEquals(0x3F82, bf16(1f + 3 * 0x1p-8f)); // tie -> even
        assertEquals(0x3F81, bf16(1f + 0x1.8p-8f)); // above the midpoint of 0x3F80/0x3F81 -> up
        assertEquals(0xC049, bf16(-3.140625f));
        assertTrue(Float.isNaN(Float.intBitsToFloat(bf16(Float.NaN) << 16)));
    }

    @Test
    void byteSizesOfBlocks() {
        assertEquals(64 * 34 / 32, StorageType.Q8_0.bytesFor(64));
        assertEquals(-1, StorageType.Q8_0.bytesFor(48));
        assertEquals(96, StorageType.BF16.bytesFor(48));
    }
}
