package io.skipgpt.io;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HashSet;
import java.util.Set;
import java.util.function.Predicate;

/**
 * Writes files so that a reader sees either the old file or the complete new one, never a half-written one:
 * the content goes to a temporary file beside the target, is synced to disk, and is then renamed over it.
 */
public final class AtomicFiles {
    /** Streams a file's content. */
    public interface Body {
        void writeTo(OutputStream out) throws IOException;
    }

    /** Fills a (temporary) directory with files. */
    interface DirectoryBody {
        void writeInto(Path dir) throws IOException;
    }

    private AtomicFiles() {}

    public static void write(Path file, byte[] content) throws IOException {
        write(file, out -> out.write(content));
    }

    public static void write(Path file, Body body) throws IOException {
        Path target = file.toAbsolutePath();
        Path dir = target.getParent();
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, "." + target.getFileName(), ".tmp");
        try {
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(tmp,
                    java.nio.file.StandardOpenOption.WRITE)) {
                OutputStream out = new BufferedOutputStream(java.nio.channels.Channels.newOutputStream(ch), 1 << 20);
                body.writeTo(out);
                out.flush();
                ch.force(true); // durable before the rename makes it visible: a crash leaves old or new, never torn
            }
            shareable(tmp, "rw-r--r--");
            move(tmp, target);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /**
     * Writes a directory's files into a temporary directory beside it, then renames that into place when the
     * target does not exist yet. Into an existing directory each file is renamed in, replacing its old version,
     * and then the old files that {@code stale} accepts and this write did not produce are deleted (shards of an
     * earlier, differently sharded export, say).
     */
    static void writeDirectory(Path dir, DirectoryBody body, Predicate<String> stale) throws IOException {
        Path target = dir.toAbsolutePath();
        Files.createDirectories(target.getParent());
        Path tmp = Files.createTempDirectory(target.getParent(), "." + target.getFileName() + ".");
        try {
            body.writeInto(tmp);
            shareable(tmp, "rwxr-xr-x");
            if (!Files.exists(target)) {
                move(tmp, target);
                return;
            }
            if (!Files.isDirectory(target)) throw new IOException(target + ": exists and is not a directory");
            Set<String> written = new HashSet<>();
            try (DirectoryStream<Path> files = Files.newDirectoryStream(tmp)) {
                for (Path f : files) {
                    written.add(f.getFileName().toString());
                    move(f, target.resolve(f.getFileName()));
                }
            }
            try (DirectoryStream<Path> files = Files.newDirectoryStream(target)) {
                for (Path f : files) {
                    String name = f.getFileName().toString();
                    if (!written.contains(name) && stale.test(name) && Files.isRegularFile(f)) Files.delete(f);
                }
            }
        } finally {
            deleteTree(tmp);
        }
    }

    /** Temporary files are created private (0600/0700); the result gets the usual permissions of a model file. */
    private static void shareable(Path p, String permissions) throws IOException {
        try {
            Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(permissions));
        } catch (UnsupportedOperationException e) {
            // Not a POSIX file system: the defaults apply.
        }
    }

    private static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Deletes a file, or a directory and everything below it; nothing when it does not exist. */
    public static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) return;
        if (Files.isDirectory(p)) {
            try (DirectoryStream<Path> children = Files.newDirectoryStream(p)) {
                for (Path c : children) deleteTree(c);
            }
        }
        Files.delete(p);
    }
}
