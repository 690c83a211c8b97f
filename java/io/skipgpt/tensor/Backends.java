package io.skipgpt.tensor;

import java.io.PrintStream;
import java.util.function.Supplier;

/**
 * Picks the backend for {@code --device auto|cpu|cuda}. The GPU question is answered by {@link GpuProbe}, the
 * project's own library, so that no CUDA class is ever loaded on a machine without a driver.
 */
public final class Backends {
    private Backends() {}

    /**
     * "cpu": the CPU backend. "auto": a GPU backend when a usable GPU exists and one is built in, else the CPU
     * backend, saying why in one line on {@code notes}. "cuda": a GPU backend or an {@link IllegalStateException}
     * saying why there is none. Any other name: {@link IllegalArgumentException}.
     */
    public static Backend open(String device, PrintStream notes) {
        return open(device, notes, GpuProbe::probe);
    }

    /** As {@link #open(String, PrintStream)}, with the GPU probe supplied (tests stand in for a GPU). */
    static Backend open(String device, PrintStream notes, Supplier<GpuProbe.Result> probe) {
        switch (device == null ? "" : device) {
            case "cpu":
                return new CpuBackend();
            case "auto": {
                GpuProbe.Result gpu = probe.get();
                if (gpu.available()) {
                    notes.println("device auto: found GPU " + gpu.message()
                            + ", but the CUDA backend is not built into this version; using CPU");
                } else {
                    notes.println("device auto: no usable GPU (" + gpu.message() + "); using CPU");
                }
                return new CpuBackend();
            }
            case "cuda": {
                GpuProbe.Result gpu = probe.get();
                if (!gpu.available()) throw new IllegalStateException("--device cuda: no usable GPU: " + gpu.message());
                throw new IllegalStateException("--device cuda: found GPU " + gpu.message()
                        + ", but the CUDA backend is not built into this version; use --device cpu or auto");
            }
            default:
                throw new IllegalArgumentException("unknown device '" + device + "': expected auto, cpu or cuda");
        }
    }
}
