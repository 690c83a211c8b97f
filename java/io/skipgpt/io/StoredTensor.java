package io.skipgpt.io;

import io.skipgpt.tensor.Tensor;
import java.nio.FloatBuffer;
import java.util.Arrays;

/**
 * A tensor as it lies in a model file: name, storage type, row-major shape (last dimension fastest) and where its
 * bytes start. Readers check that the bytes lie inside the file before they make one.
 */
record StoredTensor(String name, StorageType type, long[] shape, MappedFile file, long offset) {
    /** Elements per conversion step: whole blocks, a few MiB, so no single map gets large. */
    private static final long CHUNK = 1L << 22;

    long elements() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    long bytes() {
        return type.bytesFor(elements());
    }

    /** Converts the stored values into {@code dst}, whose shape must match (checked by the caller). */
    void readInto(Tensor dst) throws ModelFormatException {
        FloatBuffer out = dst.floats();
        long n = elements();
        long chunk = CHUNK / type.blockElements * type.blockElements;
        for (long done = 0; done < n; done += chunk) {
            long count = Math.min(chunk, n - done);
            out.position((int) done);
            type.decode(file.map(offset + type.bytesFor(done), type.bytesFor(count), "tensor '" + name + "'"), out);
        }
    }

    /** The values as a new float32 tensor of this shape (dimensions must fit an int). */
    Tensor load() throws ModelFormatException {
        int[] dims = new int[shape.length];
        for (int i = 0; i < dims.length; i++) dims[i] = Math.toIntExact(shape[i]);
        Tensor t = Tensor.f32(dims);
        try {
            readInto(t);
            return t;
        } catch (ModelFormatException | RuntimeException e) {
            t.close();
            throw e;
        }
    }

    String shapeText() {
        return Arrays.toString(shape);
    }
}
