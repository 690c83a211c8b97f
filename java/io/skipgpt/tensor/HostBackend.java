package io.skipgpt.tensor;

/**
 * What the backends whose tensors live in host memory share: host tensors, copies that are memcpy, and the
 * argument checks of the host ({@link OpChecks} for {@link Device#CPU}, which also checks index values).
 */
abstract class HostBackend implements Backend {
    static final OpChecks CHECK = new OpChecks(Device.CPU);

    @Override
    public final Device device() {
        return Device.CPU;
    }

    @Override
    public final Tensor allocate(Tensor.DType dtype, int... shape) {
        return Tensor.zeros(dtype, shape);
    }

    @Override
    public final void copy(Tensor dst, Tensor src) {
        CHECK.copy(dst, src);
        dst.copyFrom(src);
    }
}
