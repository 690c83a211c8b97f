package io.skipgpt.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** The device emulator behaves like a device where the tests rely on it: host access and host tensors refused. */
class EmulatedDeviceTest {
    @Test
    void deviceTensorsRefuseHostAccessAndHostBackends() {
        try (EmulatedDevice dev = new EmulatedDevice(); Tensor t = dev.allocate(Tensor.DType.F32, 2, 3)) {
            assertEquals(Device.CUDA, t.device());
            assertThrows(IllegalStateException.class, () -> t.get(0));
            assertThrows(IllegalStateException.class, t::toFloatArray);
            try (Tensor host = Tensor.f32(2, 3)) {
                assertThrows(IllegalArgumentException.class, () -> new CpuBackend().add(host, t));
                assertThrows(IllegalArgumentException.class, () -> dev.add(t, host));
            }
        }
    }

    @Test
    void opsRunOnDeviceTensorsAndCopiesAreCounted() {
        try (EmulatedDevice dev = new EmulatedDevice();
             Tensor ha = Tensor.of(new float[] {1, 2, 3, 4}, 2, 2);
             Tensor hb = Tensor.of(new float[] {10, 20, 30, 40}, 2, 2);
             Tensor a = dev.upload(ha);
             Tensor b = dev.upload(hb)) {
            dev.add(a.rows(1, 1), b.rows(0, 1)); // a view of rows keeps its offset on the device
            try (Tensor back = dev.download(a)) {
                assertArrayEquals(new float[] {1, 2, 13, 24}, back.toFloatArray());
            }
            assertEquals(2, dev.uploads());
            assertEquals(1, dev.downloads());
            assertEquals(2, dev.liveTensors());
        }
    }
}
