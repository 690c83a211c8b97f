package io.skipgpt.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/**
 * How tensor elements are laid out on disk (always little-endian), and their conversion to and from float32.
 * Q8_0 is ggml's block format: per 32 elements one F16 scale d and 32 int8 quants q, value = d * q (34 bytes).
 */
enum StorageType {
    F32(1, 4),
    F16(1, 2),
    BF16(1, 2),
    Q8_0(32, 34);

    /** Elements per block and bytes per block. */
    final int blockElements;
    final int blockBytes;

    StorageType(int blockElements, int blockBytes) {
        this.blockElements = blockElements;
        this.blockBytes = blockBytes;
    }

    /** Bytes of {@code elements} values, or -1 when they do not fill whole blocks. */
    long bytesFor(long elements) {
        return elements % blockElements != 0 ? -1 : elements / blockElements * blockBytes;
    }

    /** Decodes {@code src} (whole blocks, little-endian) into {@code dst} from its position on. */
    void decode(ByteBuffer src, FloatBuffer dst) {
        ByteBuffer le = src.slice().order(ByteOrder.LITTLE_ENDIAN);
        switch (this) {
            case F32 -> dst.put(le.asFloatBuffer());
            case F16 -> {
                while (le.remaining() >= 2) dst.put(HALF_TO_FLOAT[le.getShort() & 0xFFFF]);
            }
            case BF16 -> {
                while (le.remaining() >= 2) dst.put(Float.intBitsToFloat((le.getShort() & 0xFFFF) << 16));
            }
            case Q8_0 -> {
                while (le.remaining() >= blockBytes) {
                    float d = HALF_TO_FLOAT[le.getShort() & 0xFFFF];
                    for (int j = 0; j < blockElements; j++) dst.put(d * le.get());
                }
            }
        }
    }

    /** Encodes {@code count} floats of {@code src} into {@code dst} (little-endian). Only F32, F16 and BF16. */
    void encode(FloatBuffer src, int count, ByteBuffer dst) {
        ByteBuffer le = dst.order(ByteOrder.LITTLE_ENDIAN);
        switch (this) {
            case F32 -> {
                le.asFloatBuffer().put(src.slice().limit(count));
                src.position(src.position() + count);
                le.position(le.position() + count * 4);
            }
            case F16 -> {
                for (int i = 0; i < count; i++) le.putShort(floatToHalf(src.get()));
            }
            case BF16 -> {
                for (int i = 0; i < count; i++) le.putShort(floatToBf16(src.get()));
            }
            case Q8_0 -> throw new UnsupportedOperationException("writing Q8_0 is not supported");
        }
    }

    private static final float[] HALF_TO_FLOAT = new float[1 << 16];

    static {
        for (int h = 0; h < HALF_TO_FLOAT.length; h++) HALF_TO_FLOAT[h] = halfToFloat(h);
    }

    /** IEEE 754 binary16 bits to float32 (exact: every half is a float). */
    static float halfToFloat(int h) {
        int sign = (h & 0x8000) << 16;
        int exp = (h >>> 10) & 0x1F;
        int mant = h & 0x3FF;
        if (exp == 0) {
            float sub = Math.scalb((float) mant, -24); // subnormal (or zero): mant * 2^-24
            return sign != 0 ? -sub : sub;
        }
        if (exp == 0x1F) return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13)); // inf, NaN
        return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
    }

    /** float32 to binary16, rounding to nearest even; overflow gives infinity, NaN stays NaN. */
    static short floatToHalf(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int exp = (bits >>> 23) & 0xFF;
        int mant = bits & 0x7FFFFF;
        if (exp == 0xFF) return (short) (sign | 0x7C00 | (mant != 0 ? 0x200 : 0));
        int e = exp - 127 + 15;
        if (e >= 0x1F) return (short) (sign | 0x7C00);
        if (e <= 0) {
            // Subnormal half: value = m * 2^-24 with m = (1.mant * 2^23) >> (14 - e); below 2^-25 it rounds to 0.
            if (e < -10) return (short) sign;
            int full = mant | 0x800000;
            int shift = 14 - e;
            return (short) (sign | roundShift(full, shift));
        }
        // A carry out of the mantissa correctly bumps the exponent (up to infinity).
        return (short) (sign | roundShift((e << 23) | mant, 13));
    }

    /** float32 to bfloat16 (the top 16 bits), rounding to nearest even; NaN stays NaN. */
    static short floatToBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) return (short) ((bits >>> 16) | 0x40);
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    /** value >> shift, rounded to nearest, ties to even. */
    private static int roundShift(int value, int shift) {
        int kept = value >>> shift;
        int rest = value & ((1 << shift) - 1);
        int half = 1 << (shift - 1);
        return rest > half || (rest == half && (kept & 1) != 0) ? kept + 1 : kept;
    }
}
