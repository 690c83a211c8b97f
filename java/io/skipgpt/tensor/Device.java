package io.skipgpt.tensor;

/**
 * Where a tensor's memory lives. Host code reads and writes {@link #CPU} tensors directly; a {@link #CUDA}
 * tensor holds a device address that only kernels dereference: it moves to and from the host through
 * {@link Backend#copy}, {@link Backend#upload} and {@link Backend#download}.
 */
public enum Device {
    CPU, CUDA
}
