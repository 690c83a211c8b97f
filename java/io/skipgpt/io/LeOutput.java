package io.skipgpt.io;

import io.skipgpt.tensor.Tensor;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;

/** Little-endian binary output for the writers, including tensor data converted to a storage type. */
final class LeOutput {
    /** Elements converted per step when writing tensor data. */
    private static final int CHUNK = 1 << 18;

    private final OutputStream out;
    private final ByteBuffer scratch = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    private long written;

    LeOutput(OutputStream out) {
        this.out = out;
    }

    void bytes(byte[] b) throws IOException {
        out.write(b);
        written += b.length;
    }

    void u8(int v) throws IOException {
        out.write(v);
        written++;
    }

    void i32(int v) throws IOException {
        scratch.clear();
        bytes(scratch.putInt(v), 4);
    }

    void i64(long v) throws IOException {
        scratch.clear();
        bytes(scratch.putLong(v), 8);
    }

    void f32(float v) throws IOException {
        scratch.clear();
        bytes(scratch.putFloat(v), 4);
    }

    /** Zero bytes up to the next multiple of {@code alignment}. */
    void padTo(int alignment) throws IOException {
        while (written % alignment != 0) u8(0);
    }

    /** A GGUF string: u64 byte length, then UTF-8. */
    void ggufString(String s) throws IOException {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        i64(b.length);
        bytes(b);
    }

    /** All values of {@code t} (row-major) in storage type {@code type}. */
    void tensor(Tensor t, StorageType type) throws IOException {
        FloatBuffer src = t.floats();
        ByteBuffer buf = ByteBuffer.allocate(CHUNK * 4);
        while (src.hasRemaining()) {
            int n = Math.min(CHUNK, src.remaining());
            buf.clear();
            type.encode(src, n, buf);
            out.write(buf.array(), 0, buf.position());
            written += buf.position();
        }
    }

    /** The rows of {@code t} in the order {@code order} (row r written = row order[r] of t), as {@code type}. */
    void tensorRows(Tensor t, int[] order, StorageType type) throws IOException {
        int cols = t.cols();
        FloatBuffer src = t.floats();
        ByteBuffer buf = ByteBuffer.allocate(cols * 4);
        for (int r : order) {
            buf.clear();
            type.encode(src.slice(r * cols, cols), cols, buf);
            out.write(buf.array(), 0, buf.position());
            written += buf.position();
        }
    }

    private void bytes(ByteBuffer b, int n) throws IOException {
        out.write(b.array(), 0, n);
        written += n;
    }
}
