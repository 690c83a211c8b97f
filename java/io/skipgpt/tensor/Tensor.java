package io.skipgpt.tensor;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.Arrays;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.ShortPointer;

/**
 * A dense row-major tensor in native memory: float32 activations and weights, int32 ids, positions and
 * indices, or bfloat16 linear weights on a device. A tensor either owns its memory (closed deterministically) or
 * is a view of rows of another one. Shapes are small int arrays; the last dimension is the row length, the
 * product of the others the row count.
 *
 * <p>A tensor lives on a {@link Device}. Host tensors ({@link Device#CPU}, made by the static factories here)
 * are read and written from Java. A device tensor is made by a device backend ({@link Backend#allocate},
 * {@link Backend#upload}); its pointer holds a device address that Java never dereferences, so every host
 * accessor ({@link #get}, {@link #floats()}, {@link #toFloatArray()}, {@link #copyFrom(Tensor)}, ...) throws an
 * {@link IllegalStateException} for it: move data with {@link Backend#copy} or {@link Backend#download}.
 * Shapes, {@link #rows(int, int)} views and {@link #reshape} work the same on every device.
 *
 * <p>{@link DType#BF16} is device-only storage: a device backend makes it for a linear layer's weight
 * ({@link Backend#uploadWeight}) and reads it only in matmul. No host tensor has it, so it can be neither
 * downloaded nor read from Java; keep the float32 original where the values are needed on the host.
 */
public final class Tensor implements AutoCloseable {
    public enum DType {
        F32(4), I32(4),
        /** bfloat16 bits (the top half of a float32): device-only weight storage, see the class comment. */
        BF16(2);

        public final int bytes;

        DType(int bytes) {
            this.bytes = bytes;
        }
    }

    private final DType dtype;
    private final int[] shape;
    private final long size;
    private final Pointer data;
    private final Device device;
    /** Frees the memory on close: null for views, which own nothing. */
    private final Runnable release;

    private Tensor(DType dtype, int[] shape, Pointer data, Device device, Runnable release) {
        this.dtype = dtype;
        this.shape = shape.clone();
        this.size = product(shape);
        this.data = data;
        this.device = device;
        this.release = release;
    }

    private static Tensor host(DType dtype, int[] shape, Pointer data) {
        return new Tensor(dtype, shape, data, Device.CPU, data::close);
    }

    /** A zero-filled host tensor of dtype F32 or I32 (BF16 exists only on a device). */
    public static Tensor zeros(DType dtype, int... shape) {
        return switch (dtype) {
            case F32 -> f32(shape);
            case I32 -> i32(shape);
            case BF16 -> throw new IllegalArgumentException("no host tensor is BF16 " + Arrays.toString(shape)
                    + ": BF16 is device-only weight storage (Backend.uploadWeight), copied device to device only");
        };
    }

    /**
     * A tensor over memory a device backend allocated: {@code address} holds the device address (position 0),
     * {@code release} frees the memory when the tensor is closed.
     */
    static Tensor onDevice(DType dtype, int[] shape, Device device, Pointer address, Runnable release) {
        check(device != Device.CPU, "onDevice: host tensors come from the static factories");
        return new Tensor(dtype, shape, typed(dtype, address), device, release);
    }

    /** A zero-filled float32 tensor. */
    public static Tensor f32(int... shape) {
        long n = product(shape);
        FloatPointer p = new FloatPointer(Math.max(1, n));
        p.zero();
        return host(DType.F32, shape, p);
    }

    /** A zero-filled int32 tensor. */
    public static Tensor i32(int... shape) {
        long n = product(shape);
        IntPointer p = new IntPointer(Math.max(1, n));
        p.zero();
        return host(DType.I32, shape, p);
    }

    public static Tensor of(float[] values, int... shape) {
        check(values.length == product(shape), "values.length " + values.length + " != size of " + Arrays.toString(shape));
        Tensor t = f32(shape);
        t.f32().put(values);
        return t;
    }

    public static Tensor ofInts(int[] values, int... shape) {
        check(values.length == product(shape), "values.length " + values.length + " != size of " + Arrays.toString(shape));
        Tensor t = i32(shape);
        t.i32().put(values);
        return t;
    }

    public DType dtype() {
        return dtype;
    }

    public Device device() {
        return device;
    }

    public int[] shape() {
        return shape.clone();
    }

    public int dim(int i) {
        return shape[i < 0 ? shape.length + i : i];
    }

    public int rank() {
        return shape.length;
    }

    public long size() {
        return size;
    }

    /** Row length: the last dimension. */
    public int cols() {
        return shape.length == 0 ? 1 : shape[shape.length - 1];
    }

    /** Number of rows: the product of all dimensions but the last (a [3, 0] tensor has 3 empty rows). */
    public int rows() {
        long rows = 1;
        for (int i = 0; i < shape.length - 1; i++) rows *= shape[i];
        return (int) rows;
    }

    /** The float32 data of a host tensor, positioned at this tensor's first element. */
    public FloatPointer f32() {
        onHost("f32()");
        return floatPointer();
    }

    /** The int32 data of a host tensor, positioned at this tensor's first element. */
    public IntPointer i32() {
        onHost("i32()");
        return intPointer();
    }

    /** The float32 data on any device, for backends: a device address must only reach kernels. */
    FloatPointer floatPointer() {
        check(dtype == DType.F32, "tensor is " + dtype + ", not F32");
        return (FloatPointer) data;
    }

    /** The int32 data on any device, for backends: a device address must only reach kernels. */
    IntPointer intPointer() {
        check(dtype == DType.I32, "tensor is " + dtype + ", not I32");
        return (IntPointer) data;
    }

    /** The bf16 data (raw bits) of a device tensor, for backends: a device address must only reach kernels. */
    ShortPointer bf16Pointer() {
        check(dtype == DType.BF16, "tensor is " + dtype + ", not BF16");
        return (ShortPointer) data;
    }

    /** The data on any device as a pointer of the tensor's dtype, positioned at the first element. */
    Pointer pointer() {
        return data;
    }

    /**
     * The first byte as an untyped pointer (any device). A typed view counts its position in elements, but JavaCPP
     * adds a {@code void*} argument's position in bytes, as {@link Pointer#memcpy} does.
     */
    Pointer bytePointer() {
        return new Pointer(data).position(data.position() * dtype.bytes);
    }

    /** A heap-free view of the float data for Java-side loops (reference backend, tests, sampling). */
    public FloatBuffer floats() {
        FloatPointer p = f32();
        // JavaCPP reads a limit of 0 as "one element past the position": an empty tensor gets an empty buffer
        return size == 0 ? FloatBuffer.allocate(0) : new FloatPointer(p).limit(p.position() + size).asBuffer();
    }

    public IntBuffer ints() {
        IntPointer p = i32();
        return size == 0 ? IntBuffer.allocate(0) : new IntPointer(p).limit(p.position() + size).asBuffer();
    }

    /**
     * Rows {@code [from, from + count)} as a tensor sharing this one's memory, shape {@code [count, cols]}.
     * The view is a pointer positioned at the first row: JavaCPP hands native code address + position.
     */
    public Tensor rows(int from, int count) {
        int cols = cols();
        check(from >= 0 && count >= 0 && from + count <= rows(),
                "rows [" + from + ", " + (from + count) + ") out of " + rows());
        Pointer view = typed(dtype, data).position(data.position() + (long) from * cols);
        return new Tensor(dtype, new int[] {count, cols}, view, device, null);
    }

    /** The same memory seen with another shape of the same size. */
    public Tensor reshape(int... newShape) {
        check(product(newShape) == size, "cannot reshape " + Arrays.toString(shape) + " to " + Arrays.toString(newShape));
        return new Tensor(dtype, newShape, data, device, null);
    }

    public float get(long i) {
        return f32().get(i);
    }

    public void set(long i, float v) {
        f32().put(i, v);
    }

    public int getInt(long i) {
        return i32().get(i);
    }

    public void setInt(long i, int v) {
        i32().put(i, v);
    }

    public float[] toFloatArray() {
        check(size <= Integer.MAX_VALUE, "tensor too large for a Java array");
        float[] out = new float[(int) size];
        f32().get(out);
        return out;
    }

    public int[] toIntArray() {
        int[] out = new int[(int) size];
        i32().get(out);
        return out;
    }

    public void copyFrom(float[] values) {
        check(values.length == size, "copyFrom: " + values.length + " values into " + size);
        f32().put(values);
    }

    /** A host-to-host copy; {@link Backend#copy} also moves data between the host and a device. */
    public void copyFrom(Tensor other) {
        onHost("copyFrom");
        other.onHost("copyFrom");
        check(other.dtype == dtype && other.size == size, "copyFrom: size or dtype mismatch");
        // Pointer.memcpy reads positions as bytes, a view's position counts elements: pass byte positions
        Pointer.memcpy(bytePointer(), other.bytePointer(), size * dtype.bytes);
    }

    public void fill(float v) {
        FloatPointer p = f32();
        for (long i = 0; i < size; i++) p.put(i, v);
    }

    public long bytes() {
        return size * dtype.bytes;
    }

    @Override
    public void close() {
        if (release != null) release.run();
    }

    @Override
    public String toString() {
        return "Tensor" + Arrays.toString(shape) + " " + dtype + (device == Device.CPU ? "" : " on " + device);
    }

    /** Host accessors read memory through the pointer: a device address there would crash the JVM. */
    private void onHost(String accessor) {
        if (dtype == DType.BF16) {
            throw new IllegalStateException(this + ": " + accessor + " cannot read BF16, device-only weight storage "
                    + "(Backend.uploadWeight) that is never downloaded; read the F32 original instead");
        }
        if (device != Device.CPU) {
            throw new IllegalStateException(this + ": " + accessor + " needs a host tensor; copy it to the host with "
                    + "Backend.download or Backend.copy first");
        }
    }

    /**
     * A pointer of dtype's element type over p's memory, at p's position: JavaCPP counts a typed pointer's
     * position in elements of its type, which views rely on.
     */
    private static Pointer typed(DType dtype, Pointer p) {
        return switch (dtype) {
            case F32 -> new FloatPointer(p);
            case I32 -> new IntPointer(p);
            case BF16 -> new ShortPointer(p);
        };
    }

    static long product(int[] shape) {
        long n = 1;
        for (int s : shape) {
            check(s >= 0, "negative dimension in " + Arrays.toString(shape));
            n *= s;
        }
        return n;
    }

    private static void check(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException(message);
    }

    /**
     * This tensor's memory seen as a host tensor (a view owning nothing). Only for a device whose memory the host
     * can address: the test suite's device emulator keeps "device" tensors in host memory, so that code written
     * for device backends runs, and has its host accesses caught, on machines without a GPU.
     */
    Tensor hostAlias() {
        return new Tensor(dtype, shape, data, Device.CPU, null);
    }
}
