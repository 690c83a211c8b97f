package io.skipgpt.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A read-only model file seen through memory maps. Every access is bounds-checked against the file size, so a
 * short file surfaces as a {@link ModelFormatException} saying "truncated", never as a buffer underflow. Maps
 * are made per region (a single map is limited to 2 GiB) and stay valid after the channel is closed.
 */
final class MappedFile implements AutoCloseable {
    /** Window a {@link Cursor} maps at a time while parsing headers. */
    private static final int WINDOW = 16 << 20;

    final Path path;
    final long size;
    private final FileChannel channel;

    private MappedFile(Path path, FileChannel channel, long size) {
        this.path = path;
        this.channel = channel;
        this.size = size;
    }

    static MappedFile open(Path path) throws ModelFormatException {
        if (!Files.exists(path)) throw new ModelFormatException(path, "no such file");
        if (Files.isDirectory(path)) throw new ModelFormatException(path, "is a directory, expected a file");
        try {
            FileChannel ch = FileChannel.open(path, StandardOpenOption.READ);
            return new MappedFile(path, ch, ch.size());
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(path, "no such file", e);
        } catch (IOException | SecurityException e) {
            throw new ModelFormatException(path, "cannot read: " + e, e);
        }
    }

    /** The bytes {@code [offset, offset + length)}, little-endian; "truncated" when the file ends before. */
    ByteBuffer map(long offset, long length, String what) throws ModelFormatException {
        if (offset < 0 || length < 0 || offset + length > size || offset + length < 0) {
            throw new ModelFormatException(path, "truncated: " + what + " needs bytes [" + offset + ", "
                    + (offset + length) + ") but the file has " + size);
        }
        if (length > Integer.MAX_VALUE) throw new IllegalArgumentException("map of " + length + " bytes");
        try {
            return channel.map(FileChannel.MapMode.READ_ONLY, offset, length).order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new ModelFormatException(path, "cannot read " + what + ": " + e, e);
        }
    }

    /** True when the bytes of two regions are equal (used to detect a copied-out tied output head). */
    boolean sameBytes(long offsetA, long offsetB, long length) throws ModelFormatException {
        for (long done = 0; done < length; ) {
            long n = Math.min(WINDOW, length - done);
            if (!map(offsetA + done, n, "comparison").equals(map(offsetB + done, n, "comparison"))) return false;
            done += n;
        }
        return true;
    }

    Cursor cursor(long offset) {
        return new Cursor(offset);
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // A read-only channel has nothing to flush; the maps stay valid.
        }
    }

    /** Sequential little-endian reading for headers, remapping a window as it goes. */
    final class Cursor {
        private long position;
        private long windowStart;
        private ByteBuffer window = ByteBuffer.allocate(0);

        private Cursor(long position) {
            this.position = position;
        }

        long position() {
            return position;
        }

        Path file() {
            return path;
        }

        long remaining() {
            return size - position;
        }

        /** Makes {@code n} bytes at the position readable through {@code window}; returns their index in it. */
        private int need(long n, String what) throws ModelFormatException {
            if (n > remaining()) {
                throw new ModelFormatException(path, "truncated: " + what + " needs " + n + " bytes at offset "
                        + position + " but the file has " + size);
            }
            if (position < windowStart || position + n > windowStart + window.limit()) {
                windowStart = position;
                window = map(position, Math.min(Math.max(n, WINDOW), size - position), what);
            }
            int at = (int) (position - windowStart);
            position += n;
            return at;
        }

        int u8(String what) throws ModelFormatException {
            int at = need(1, what); // before reading window: need() may replace it
            return window.get(at) & 0xFF;
        }

        short i16(String what) throws ModelFormatException {
            int at = need(2, what); // before reading window: need() may replace it
            return window.getShort(at);
        }

        int i32(String what) throws ModelFormatException {
            int at = need(4, what); // before reading window: need() may replace it
            return window.getInt(at);
        }

        long i64(String what) throws ModelFormatException {
            int at = need(8, what); // before reading window: need() may replace it
            return window.getLong(at);
        }

        float f32(String what) throws ModelFormatException {
            int at = need(4, what); // before reading window: need() may replace it
            return window.getFloat(at);
        }

        double f64(String what) throws ModelFormatException {
            int at = need(8, what); // before reading window: need() may replace it
            return window.getDouble(at);
        }

        byte[] bytes(long n, String what) throws ModelFormatException {
            if (n < 0 || n > Integer.MAX_VALUE - 8) {
                throw new ModelFormatException(path, "corrupt: " + what + " claims " + n + " bytes");
            }
            int at = need(n, what);
            byte[] out = new byte[(int) n];
            window.get(at, out);
            return out;
        }

        String utf8(long n, String what) throws ModelFormatException {
            return new String(bytes(n, what), StandardCharsets.UTF_8);
        }

        void seek(long offset) {
            position = offset;
        }
    }
}
