package io.skipgpt.tensor;

import java.io.PrintStream;
import java.util.function.Supplier;

/**
 * Picks the backend for {@code --device auto|cpu|cuda}. The GPU question is answered by {@link GpuProbe}, the
 * project's own library, so that no CUDA class is ever loaded on a machine without a driver: the CUDA presets
 * are touched only after the probe found a device, and a failure to load them is reported, never fatal.
 */
public final class Backends {
    private Backends() {}

    /** Opens the CUDA backend or throws an {@link IllegalStateException} saying why it cannot. */
    @FunctionalInterface
    interface CudaOpener {
        Backend open();
    }

    /**
     * "cpu": the CPU backend. "auto": the CUDA backend (exact fp32) when a usable GPU exists and the CUDA
     * libraries load, else the CPU backend; either way one line on {@code notes} says which and why. "cuda": the
     * CUDA backend or an {@link IllegalStateException} saying why there is none. Any other name:
     * {@link IllegalArgumentException}.
     */
    public static Backend open(String device, PrintStream notes) {
        return open(device, "fp32", notes);
    }

    /**
     * As {@link #open(String, PrintStream)}, with the CUDA backend's GEMM precision: "fp32" (exact), "tf32" or
     * "bf16" (weights stored in bf16, fp32 accumulation: the fast path); see {@link CudaBackend}. The CPU computes in
     * fp32 whatever is asked. Any other precision: {@link IllegalArgumentException}, whichever device is used.
     */
    public static Backend open(String device, String precision, PrintStream notes) {
        CudaBackend.Precision p = precision(precision);
        return open(device, notes, GpuProbe::probe, () -> CudaBackend.open(p));
    }

    /** "fp32", "tf32" or "bf16" as a {@link CudaBackend.Precision}. */
    static CudaBackend.Precision precision(String name) {
        return switch (name == null ? "" : name) {
            case "fp32" -> CudaBackend.Precision.FP32;
            case "tf32" -> CudaBackend.Precision.TF32;
            case "bf16" -> CudaBackend.Precision.BF16;
            default -> throw new IllegalArgumentException("unknown precision '" + name + "': expected fp32, tf32 or bf16");
        };
    }

    /** As {@link #open(String, PrintStream)}, with the GPU probe and the CUDA backend supplied (tests stand in). */
    static Backend open(String device, PrintStream notes, Supplier<GpuProbe.Result> probe, CudaOpener cuda) {
        switch (device == null ? "" : device) {
            case "cpu":
                return new CpuBackend();
            case "auto": {
                GpuProbe.Result gpu = probe.get();
                if (!gpu.available()) {
                    notes.println("device auto: no usable GPU (" + gpu.message() + "); using CPU");
                    return new CpuBackend();
                }
                try {
                    Backend backend = openCuda(cuda);
                    notes.println("device auto: using GPU " + gpu.message() + " (CUDA backend)");
                    return backend;
                } catch (IllegalStateException e) {
                    notes.println("device auto: found GPU " + gpu.message() + ", but the CUDA backend could not start: "
                            + e.getMessage() + "; using CPU");
                    return new CpuBackend();
                }
            }
            case "cuda": {
                GpuProbe.Result gpu = probe.get();
                if (!gpu.available()) throw new IllegalStateException("--device cuda: no usable GPU: " + gpu.message()
                        + " (--device cpu runs on the CPU)");
                try {
                    return openCuda(cuda);
                } catch (IllegalStateException e) {
                    throw new IllegalStateException("--device cuda: found GPU " + gpu.message()
                            + ", but the CUDA backend could not start: " + e.getMessage(), e);
                }
            }
            default:
                throw new IllegalArgumentException("unknown device '" + device + "': expected auto, cpu or cuda");
        }
    }

    /**
     * Runs the opener; a class that cannot link (the CUDA presets missing from the class path) becomes the same
     * {@link IllegalStateException} as a library that cannot load.
     */
    private static Backend openCuda(CudaOpener cuda) {
        try {
            return cuda.open();
        } catch (LinkageError e) {
            throw new IllegalStateException("the CUDA classes could not be linked (" + e + ")", e);
        }
    }
}
