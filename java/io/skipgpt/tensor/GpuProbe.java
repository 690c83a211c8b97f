package io.skipgpt.tensor;

import org.bytedeco.javacpp.BytePointer;

/** Asks the project's own native library whether an NVIDIA GPU is usable; never touches CUDA classes. */
public final class GpuProbe {
    /** What the probe found: the device count (0 when none) and the device name or the reason for none. */
    public record Result(int devices, String message) {
        public boolean available() {
            return devices > 0;
        }
    }

    private GpuProbe() {}

    public static Result probe() {
        try (BytePointer msg = new BytePointer(256)) {
            int count = NativeCpu.gpuProbe(msg, 256);
            byte[] bytes = new byte[256];
            msg.get(bytes);
            int len = 0;
            while (len < bytes.length && bytes[len] != 0) len++;
            return new Result(count, new String(bytes, 0, len, java.nio.charset.StandardCharsets.UTF_8));
        }
    }
}
