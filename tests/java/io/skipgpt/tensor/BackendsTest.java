package io.skipgpt.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

class BackendsTest {
    private static final Supplier<GpuProbe.Result> NO_GPU =
            () -> new GpuProbe.Result(0, "no NVIDIA driver (libcuda.so.1 not found)");
    private static final Supplier<GpuProbe.Result> H200 = () -> new GpuProbe.Result(1, "NVIDIA H200");

    private final ByteArrayOutputStream notesBytes = new ByteArrayOutputStream();
    private final PrintStream notes = new PrintStream(notesBytes, true, StandardCharsets.UTF_8);

    private List<String> noteLines() {
        return notesBytes.toString(StandardCharsets.UTF_8).lines().toList();
    }

    @Test
    void cpuIsTheCpuBackendAndSaysNothing() {
        assertInstanceOf(CpuBackend.class, Backends.open("cpu", notes));
        assertEquals(List.of(), noteLines());
    }

    /** Stands in for the CUDA backend where the tests need one that opened. */
    private static final Backend FAKE_CUDA = new ReferenceBackend();
    private static final Backends.CudaOpener OPENS = () -> FAKE_CUDA;
    private static final Backends.CudaOpener FAILS = () -> {
        throw new IllegalStateException("the CUDA libraries could not be loaded (UnsatisfiedLinkError: no jnicudart)");
    };
    private static final Backends.CudaOpener CANNOT_LINK = () -> {
        throw new NoClassDefFoundError("org/bytedeco/cuda/cudart/CUstream_st");
    };
    private static final Backends.CudaOpener MUST_NOT_OPEN = () -> {
        throw new AssertionError("the CUDA backend must not be opened without a GPU");
    };

    @Test
    void autoOnThisMachineSaysWhatItPickedInOneLine() {
        GpuProbe.Result gpu = GpuProbe.probe();
        try (Backend backend = Backends.open("auto", notes)) {
            assertEquals(1, noteLines().size(), () -> "one line expected, got " + noteLines());
            if (!gpu.available()) {
                assertInstanceOf(CpuBackend.class, backend);
                assertEquals("device auto: no usable GPU (" + gpu.message() + "); using CPU", noteLines().get(0));
            }
        }
    }

    @Test
    void autoWithoutGpuNamesTheReason() {
        assertInstanceOf(CpuBackend.class, Backends.open("auto", notes, NO_GPU, MUST_NOT_OPEN));
        assertEquals(List.of("device auto: no usable GPU (no NVIDIA driver (libcuda.so.1 not found)); using CPU"),
                noteLines());
    }

    @Test
    void autoWithGpuUsesTheCudaBackend() {
        assertSame(FAKE_CUDA, Backends.open("auto", notes, H200, OPENS));
        assertEquals(List.of("device auto: using GPU NVIDIA H200 (CUDA backend)"), noteLines());
    }

    @Test
    void autoFallsBackWithOneLineWhenTheCudaBackendCannotStart() {
        assertInstanceOf(CpuBackend.class, Backends.open("auto", notes, H200, FAILS));
        assertEquals(List.of("device auto: found GPU NVIDIA H200, but the CUDA backend could not start: the CUDA "
                + "libraries could not be loaded (UnsatisfiedLinkError: no jnicudart); using CPU"), noteLines());
    }

    @Test
    void autoFallsBackWhenTheCudaClassesCannotLink() {
        assertInstanceOf(CpuBackend.class, Backends.open("auto", notes, H200, CANNOT_LINK));
        assertEquals(List.of("device auto: found GPU NVIDIA H200, but the CUDA backend could not start: the CUDA "
                + "classes could not be linked (java.lang.NoClassDefFoundError: org/bytedeco/cuda/cudart/CUstream_st); "
                + "using CPU"), noteLines());
    }

    @Test
    void cudaOnThisMachineOpensOrFailsClearly() {
        GpuProbe.Result gpu = GpuProbe.probe();
        if (gpu.available()) {
            try (Backend backend = Backends.open("cuda", notes)) {
                assertInstanceOf(CudaBackend.class, backend);
            }
        } else {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> Backends.open("cuda", notes));
            assertEquals("--device cuda: no usable GPU: " + gpu.message() + " (--device cpu runs on the CPU)",
                    e.getMessage());
        }
        assertEquals(List.of(), noteLines());
    }

    /** The real CUDA backend where no driver exists: the presets cannot load, and that is an exception, not a crash. */
    @Test
    void withoutADriverTheCudaBackendFailsToOpenClearly() {
        assumeFalse(GpuProbe.probe().available(), "a GPU is present");
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> CudaBackend.open(CudaBackend.Precision.FP32));
        assertTrue(e.getMessage().startsWith("the CUDA libraries could not be loaded ("), e.getMessage());
    }

    @Test
    void cudaWithoutGpuNamesTheReason() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> Backends.open("cuda", notes, NO_GPU, MUST_NOT_OPEN));
        assertEquals("--device cuda: no usable GPU: no NVIDIA driver (libcuda.so.1 not found) (--device cpu runs on the CPU)",
                e.getMessage());
    }

    @Test
    void cudaWithGpuIsTheCudaBackend() {
        assertSame(FAKE_CUDA, Backends.open("cuda", notes, H200, OPENS));
        assertEquals(List.of(), noteLines());
    }

    @Test
    void cudaWithGpuFailsClearlyWhenTheCudaBackendCannotStart() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Backends.open("cuda", notes, H200, FAILS));
        assertEquals("--device cuda: found GPU NVIDIA H200, but the CUDA backend could not start: the CUDA libraries "
                + "could not be loaded (UnsatisfiedLinkError: no jnicudart)", e.getMessage());
    }

    @Test
    void unknownDeviceListsTheValidOnes() {
        for (String bad : new String[] {"gpu", "CPU", "", null}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Backends.open(bad, notes));
            assertEquals("unknown device '" + bad + "': expected auto, cpu or cuda", e.getMessage());
        }
    }

    /**
     * Opening a backend with --device auto and running a matmul (OpenBLAS) and a kernel must not load any CUDA
     * class: on a machine without a driver the CUDA presets cannot even load. Checked in a fresh JVM that logs
     * every class it loads; meaningful where there is no GPU.
     */
    @Test
    void noCudaClassIsLoaded() throws Exception {
        assumeFalse(GpuProbe.probe().available(), "with a GPU, auto loads the CUDA classes by design");
        String java = System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
        Process p = new ProcessBuilder(java, "-Xlog:class+load=info", "-cp", System.getProperty("java.class.path"),
                OpenAndRun.class.getName()).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), log);
        assertTrue(log.contains("org.bytedeco.openblas.global.openblas "), "OpenBLAS was loaded");
        assertTrue(log.contains("io.skipgpt.tensor.NativeCpu "), "the native kernels were loaded");
        assertFalse(log.contains("org.bytedeco.cuda"), "a CUDA class was loaded");
    }

    /** The child JVM of {@link #noCudaClassIsLoaded}. */
    static final class OpenAndRun {
        public static void main(String[] args) {
            try (Backend b = Backends.open("auto", System.out);
                 Tensor x = Tensor.of(new float[] {1, 2, 3, 4}, 2, 2);
                 Tensor out = Tensor.f32(2, 2)) {
                b.matmul(out, x, x);
                b.softmax(out);
            }
        }
    }
}
