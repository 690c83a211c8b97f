package io.skipgpt.cli;

import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Backends;
import java.util.function.Supplier;
import picocli.CommandLine.Option;

/** Where a model runs: the device, and the GEMM precision on a GPU. Shared by every command that runs a model. */
final class DeviceOptions {
    @Option(names = "--device", paramLabel = "DEVICE", defaultValue = "auto",
            description = "auto (GPU when usable, else CPU), cpu or cuda. Default: ${DEFAULT-VALUE}.")
    String device;

    @Option(names = "--precision", paramLabel = "P", defaultValue = "fp32",
            description = "GEMMs on the GPU: fp32 (exact), tf32, or bf16 (weights stored in bf16, fp32 accumulation;"
                    + " the fast path). The CPU always computes in fp32. Default: ${DEFAULT-VALUE}.")
    String precision;

    /**
     * Where tests run commands on a device backend without a GPU (the emulated device); null otherwise. Set only
     * by tests, around the commands they run.
     */
    static volatile Supplier<Backend> deviceForTests;

    /** The backend: {@link Backends#open} (auto: the GPU when usable, else the CPU, said in one line). */
    Backend open() {
        Supplier<Backend> test = deviceForTests;
        if (test != null && !"cpu".equals(device)) return test.get();
        return Backends.open(device, precision, System.err);
    }
}
