package io.skipgpt.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

    @Test
    void autoOnThisMachineFallsBackWithOneLine() {
        GpuProbe.Result gpu = GpuProbe.probe();
        Backend backend = Backends.open("auto", notes);
        assertInstanceOf(CpuBackend.class, backend, "no CUDA backend is built into this version");
        assertEquals(1, noteLines().size(), () -> "one line expected, got " + noteLines());
        if (!gpu.available()) {
            assertEquals("device auto: no usable GPU (" + gpu.message() + "); using CPU", noteLines().get(0));
        }
    }

    @Test
    void autoWithoutGpuNamesTheReason() {
        assertInstanceOf(CpuBackend.class, Backends.open("auto", notes, NO_GPU));
        assertEquals(List.of("device auto: no usable GPU (no NVIDIA driver (libcuda.so.1 not found)); using CPU"),
                noteLines());
    }

    @Test
    void autoWithGpuSaysTheCudaBackendIsMissing() {
        assertInstanceOf(CpuBackend.class, Backends.open("auto", notes, H200));
        assertEquals(List.of("device auto: found GPU NVIDIA H200, but the CUDA backend is not built into this "
                + "version; using CPU"), noteLines());
    }

    @Test
    void cudaOnThisMachineFailsClearly() {
        GpuProbe.Result gpu = GpuProbe.probe();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Backends.open("cuda", notes));
        if (!gpu.available()) assertEquals("--device cuda: no usable GPU: " + gpu.message(), e.getMessage());
        assertEquals(List.of(), noteLines());
    }

    @Test
    void cudaWithoutGpuNamesTheReason() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Backends.open("cuda", notes, NO_GPU));
        assertEquals("--device cuda: no usable GPU: no NVIDIA driver (libcuda.so.1 not found)", e.getMessage());
    }

    @Test
    void cudaWithGpuSaysTheCudaBackendIsMissing() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Backends.open("cuda", notes, H200));
        assertEquals("--device cuda: found GPU NVIDIA H200, but the CUDA backend is not built into this version; "
                + "use --device cpu or auto", e.getMessage());
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
     * every class it loads.
     */
    @Test
    void noCudaClassIsLoaded() throws Exception {
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
