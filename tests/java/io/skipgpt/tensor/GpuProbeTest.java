package io.skipgpt.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** Holds on any machine: with a GPU the message is the device name, without one it says why. */
class GpuProbeTest {
    @Test
    void answersConsistently() {
        GpuProbe.Result r = GpuProbe.probe();
        System.out.println("GPU probe: " + r);
        assertTrue(r.devices() >= 0);
        assertEquals(r.devices() > 0, r.available());
        assertFalse(r.message().isBlank(), "the probe always says something");
        assertFalse(r.message().contains("\0"));
        assertTrue(r.message().getBytes(StandardCharsets.UTF_8).length < 256, "fits the native buffer");
        assertEquals(r, GpuProbe.probe(), "probing twice gives the same answer");
    }

    @Test
    void withoutGpuTheReasonIsOneOfTheKnownOnes() {
        GpuProbe.Result r = GpuProbe.probe();
        assumeFalse(r.available(), "a GPU machine: the message is the device name");
        assertTrue(r.message().startsWith("no NVIDIA driver")
                || r.message().startsWith("libcuda.so.1 lacks")
                || r.message().startsWith("cuInit failed")
                || r.message().startsWith("the NVIDIA driver reports no CUDA device"), r.message());
    }
}
