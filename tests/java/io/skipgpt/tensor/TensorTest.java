package io.skipgpt.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import org.bytedeco.javacpp.Pointer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** Tensor memory: row views seen by native code, reshape, copies, ints, empty and zero-width tensors. */
class TensorTest {
    private static final Backend REF = new ReferenceBackend();
    private static final Backend CPU = new CpuBackend();
    private static final float SENTINEL = 12345f;

    private final Tensors t = new Tensors(99);

    @AfterEach
    void free() {
        t.close();
    }

    private Tensor sentinel(int... shape) {
        Tensor s = t.poisoned(shape);
        s.fill(SENTINEL);
        return s;
    }

    /** matmul into rows [from, from + n) of a [10, m] tensor writes exactly those rows; sgemm and sgemv paths. */
    @Test
    void matmulIntoARowViewTouchesOnlyThoseRows() {
        int k = 13, m = 7;
        Tensor w = t.uniform(-1, 1, m, k);
        for (int[] fromN : new int[][] {{3, 4}, {9, 1}, {0, 1}, {0, 10}}) {
            int from = fromN[0], n = fromN[1];
            Tensor x = t.uniform(-1, 1, n, k), want = t.poisoned(n, m), big = sentinel(10, m);
            REF.matmul(want, x, w);
            CPU.matmul(big.rows(from, n), x, w);
            for (int r = 0; r < 10; r++) {
                for (int c = 0; c < m; c++) {
                    float expected = r >= from && r < from + n ? want.get((long) (r - from) * m + c) : SENTINEL;
                    assertEquals(expected, big.get((long) r * m + c), 1e-5f, "row " + r + " col " + c + " of " + from + "+" + n);
                }
            }
        }
    }

    /** A view as input reads its own rows: x = rows 2..4 of a bigger tensor equals a copy of those rows. */
    @Test
    void rowViewsAsInputsReadTheirOwnRows() {
        Tensor big = t.uniform(-1, 1, 6, 9), w = t.uniform(-1, 1, 5, 9);
        Tensor view = big.rows(2, 3), copy = t.copy(view);
        assertEquals(big.get(2 * 9), copy.get(0));
        Tensor fromView = t.poisoned(3, 5), fromCopy = t.poisoned(3, 5);
        CPU.matmul(fromView, view, w);
        CPU.matmul(fromCopy, copy, w);
        assertArrayEquals(fromCopy.toFloatArray(), fromView.toFloatArray());
        // a view of a view: row 1 of rows 2..4 is row 3
        assertEquals(big.get(3 * 9 + 4), big.rows(2, 3).rows(1, 1).get(4));
    }

    /** The overlap check compares byte ranges: adjacent row views of one tensor are fine as out and x. */
    @Test
    void adjacentViewsOfOneTensorMayBeOutAndInput() {
        Tensor big = t.uniform(-1, 1, 5, 4), w = t.uniform(-1, 1, 4, 4);
        Tensor want = t.poisoned(2, 4);
        REF.matmul(want, big.rows(0, 3).rows(1, 2), w);
        CPU.matmul(big.rows(3, 2), big.rows(1, 2), w);
        assertArrayEquals(want.toFloatArray(), big.rows(3, 2).toFloatArray(), 1e-6f);
    }

    /** Native kernels on views of both float and int tensors: rmsnorm in place, gather with an index view. */
    @Test
    void nativeKernelsHonourViewsOfFloatsAndInts() {
        Tensor big = t.uniform(-1, 1, 8, 6), untouched = t.copy(big), weight = t.uniform(1, 2, 6);
        Tensor want = t.copy(big.rows(5, 2));
        REF.rmsnorm(want, want, weight, 1e-5f);
        CPU.rmsnorm(big.rows(5, 2), big.rows(5, 2), weight, 1e-5f);
        assertArrayEquals(untouched.rows(0, 5).toFloatArray(), big.rows(0, 5).toFloatArray());
        assertArrayEquals(want.toFloatArray(), big.rows(5, 2).toFloatArray(), 1e-6f);

        Tensor idx = t.ints(7, 0, 3, 2, 6).reshape(5, 1);
        Tensor gathered = t.poisoned(2, 6);
        CPU.gatherRows(gathered, untouched, idx.rows(2, 2).reshape(2)); // rows 3 and 2
        assertArrayEquals(untouched.rows(3, 1).toFloatArray(), gathered.rows(0, 1).toFloatArray());
        assertArrayEquals(untouched.rows(2, 1).toFloatArray(), gathered.rows(1, 1).toFloatArray());
    }

    @Test
    void viewsOutsideTheTensorAreRejected() {
        Tensor a = t.uniform(-1, 1, 4, 3);
        assertThrows(IllegalArgumentException.class, () -> a.rows(3, 2));
        assertThrows(IllegalArgumentException.class, () -> a.rows(-1, 1));
    }

    @Test
    void reshapeSharesMemory() {
        Tensor a = t.uniform(-1, 1, 2, 6);
        Tensor b = a.reshape(3, 4);
        assertEquals(3, b.rows());
        assertEquals(4, b.cols());
        b.set(5, 42f);
        assertEquals(42f, a.get(5));
        assertEquals(a.get(6), a.rows(1, 1).reshape(2, 3).get(0), "a reshaped view starts where the view does");
        assertThrows(IllegalArgumentException.class, () -> a.reshape(5, 2));
    }

    @Test
    void copyFromCopiesAndChecksSizes() {
        Tensor a = t.uniform(-1, 1, 3, 4), b = t.poisoned(4, 3);
        b.copyFrom(a); // same size, other shape: a flat copy
        assertArrayEquals(a.toFloatArray(), b.toFloatArray());
        float[] values = new float[12];
        for (int i = 0; i < 12; i++) values[i] = i + 0.5f;
        a.copyFrom(values);
        assertArrayEquals(values, a.toFloatArray());
        assertThrows(IllegalArgumentException.class, () -> a.copyFrom(new float[11]));
        assertThrows(IllegalArgumentException.class, () -> a.copyFrom(t.poisoned(13)));
        assertThrows(IllegalArgumentException.class, () -> a.copyFrom(t.ints(new int[12])));
        // into a view: only its rows change
        Tensor big = t.uniform(-1, 1, 5, 4), before = t.copy(big);
        big.rows(1, 3).copyFrom(a);
        assertArrayEquals(a.toFloatArray(), big.rows(1, 3).toFloatArray());
        assertArrayEquals(before.rows(0, 1).toFloatArray(), big.rows(0, 1).toFloatArray());
        assertArrayEquals(before.rows(4, 1).toFloatArray(), big.rows(4, 1).toFloatArray());
    }

    @Test
    void intsReadAndWriteThroughEveryAccessor() {
        Tensor ids = t.keep(Tensor.ofInts(new int[] {5, -3, 7, 11, 2, 9}, 2, 3));
        assertEquals(Tensor.DType.I32, ids.dtype());
        assertEquals(-3, ids.getInt(1));
        ids.setInt(4, 40);
        assertArrayEquals(new int[] {5, -3, 7, 11, 40, 9}, ids.toIntArray());
        IntBuffer row1 = ids.rows(1, 1).ints();
        assertEquals(3, row1.limit());
        assertEquals(11, row1.get(0));
        row1.put(2, 90);
        assertEquals(90, ids.getInt(5));
        assertThrows(IllegalArgumentException.class, ids::f32);
        assertThrows(IllegalArgumentException.class, () -> t.uniform(0, 1, 2).i32());
    }

    @Test
    void floatsOfAViewCoverExactlyItsRows() {
        Tensor a = t.uniform(-1, 1, 4, 5);
        FloatBuffer row2 = a.rows(2, 1).floats();
        assertEquals(5, row2.limit());
        assertEquals(a.get(10), row2.get(0));
        assertEquals(a.get(14), row2.get(4));
    }

    @Test
    void emptyAndZeroWidthTensors() {
        Tensor empty = t.keep(Tensor.f32(0, 4));
        assertEquals(0, empty.rows());
        assertEquals(0, empty.floats().limit());
        assertEquals(0, t.keep(Tensor.i32(0)).ints().limit());
        Tensor zeroWidth = t.keep(Tensor.f32(3, 0));
        assertEquals(3, zeroWidth.rows());
        assertEquals(0, zeroWidth.cols());
        assertEquals(0, t.uniform(-1, 1, 4, 2).rows(4, 0).floats().limit());
    }

    /**
     * A device tensor (here over a stand-in address no one dereferences) keeps its shape, views and device, while
     * every host accessor refuses it and host backends reject it; closing it runs its release once per close.
     */
    @Test
    void deviceTensorsRefuseHostAccess() {
        int[] released = {0};
        Tensor d = Tensor.onDevice(Tensor.DType.F32, new int[] {4, 3}, Device.CUDA, new Pointer(), () -> released[0]++);
        assertEquals(Device.CUDA, d.device());
        assertEquals("Tensor[4, 3] F32 on CUDA", d.toString());
        assertEquals(Device.CUDA, d.rows(1, 2).device());
        assertEquals(Device.CUDA, d.reshape(12).device());
        Tensor host = t.uniform(-1, 1, 4, 3);
        for (Executable access : new Executable[] {() -> d.get(0), () -> d.set(0, 1f), d::toFloatArray, d::floats,
                d::f32, () -> d.fill(0f), () -> d.copyFrom(new float[12]), () -> d.copyFrom(host),
                () -> host.copyFrom(d), () -> d.rows(1, 1).get(0)}) {
            IllegalStateException e = assertThrows(IllegalStateException.class, access);
            assertTrue(e.getMessage().contains("on CUDA: ") && e.getMessage().contains("Backend.download"), e.getMessage());
        }
        Tensor ids = Tensor.onDevice(Tensor.DType.I32, new int[] {3}, Device.CUDA, new Pointer(), () -> {});
        assertThrows(IllegalStateException.class, () -> ids.getInt(0));
        assertThrows(IllegalStateException.class, ids::ints);

        for (Backend b : new Backend[] {REF, CPU}) {
            assertEquals(Device.CPU, b.device());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.add(host, d));
            assertEquals("add: src [4, 3] is on CUDA, but this backend computes on CPU: move it with Backend.copy or "
                    + "upload", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> b.copy(host, d));
            assertEquals("copy: Tensor[4, 3] F32 on CUDA is on CUDA, but this backend moves data between CPU and CPU",
                    e.getMessage());
        }
        d.rows(0, 1).close(); // a view owns nothing
        assertEquals(0, released[0]);
        d.close();
        assertEquals(1, released[0]);
    }

    /**
     * BF16 tensors exist only on a device: no host factory or host backend makes one, views of one count their
     * positions in bf16 elements (2 bytes, as native code and the overlap checks read them), and every host
     * accessor refuses one, naming BF16.
     */
    @Test
    void bf16IsDeviceOnlyStorage() {
        for (Executable make : new Executable[] {() -> Tensor.zeros(Tensor.DType.BF16, 2, 3),
                () -> REF.allocate(Tensor.DType.BF16, 2, 3), () -> CPU.allocate(Tensor.DType.BF16, 2, 3)}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, make);
            assertEquals("no host tensor is BF16 [2, 3]: BF16 is device-only weight storage (Backend.uploadWeight), "
                    + "copied device to device only", e.getMessage());
        }
        Tensor w = Tensor.onDevice(Tensor.DType.BF16, new int[] {4, 6}, Device.CUDA, new Pointer(), () -> {});
        assertEquals(2, w.dtype().bytes);
        assertEquals(48, w.bytes());
        assertEquals("Tensor[4, 6] BF16 on CUDA", w.toString());
        Tensor view = w.rows(1, 3).rows(1, 2);
        assertArrayEquals(new int[] {2, 6}, view.shape());
        assertEquals(Tensor.DType.BF16, view.dtype());
        assertEquals(12, view.bf16Pointer().position());
        assertEquals(12, view.reshape(12).bf16Pointer().position());
        for (Executable access : new Executable[] {() -> w.get(0), w::floats, w::f32, w::toFloatArray,
                () -> w.fill(0f), () -> view.copyFrom(new float[12])}) {
            IllegalStateException e = assertThrows(IllegalStateException.class, access);
            assertTrue(e.getMessage().contains(" BF16 on CUDA: ") && e.getMessage().contains("cannot read BF16"),
                    e.getMessage());
        }
        for (Backend b : new Backend[] {REF, CPU}) {
            assertThrows(IllegalArgumentException.class, () -> b.download(w));
        }
    }

    /** A host backend stores a weight as it is: uploadWeight is a plain copy. */
    @Test
    void hostBackendsUploadWeightsAsPlainCopies() {
        for (Backend b : new Backend[] {REF, CPU}) {
            Tensor w = t.uniform(-1, 1, 5, 3), stored = t.keep(b.uploadWeight(w));
            assertEquals(Tensor.DType.F32, stored.dtype());
            assertEquals(Device.CPU, stored.device());
            assertArrayEquals(w.shape(), stored.shape());
            assertArrayEquals(w.toFloatArray(), stored.toFloatArray());
            stored.set(0, 7f);
            assertTrue(w.get(0) != 7f, "uploadWeight made a copy");
        }
    }

    /** On a host backend allocate, upload, download and copy are host tensors and plain copies. */
    @Test
    void hostBackendsMoveDataAsHostCopies() {
        for (Backend b : new Backend[] {REF, CPU}) {
            Tensor z = t.keep(b.allocate(Tensor.DType.I32, 2, 3));
            assertEquals(Device.CPU, z.device());
            assertEquals(Tensor.DType.I32, z.dtype());
            assertArrayEquals(new int[6], z.toIntArray());
            Tensor src = t.uniform(-1, 1, 3, 2), up = t.keep(b.upload(src)), down = t.keep(b.download(up));
            assertArrayEquals(src.toFloatArray(), down.toFloatArray());
            up.set(0, 7f);
            assertEquals(src.get(1), down.get(1));
            assertTrue(src.get(0) != 7f, "upload made a copy");
            Tensor into = t.poisoned(6);
            b.copy(into, src);
            assertArrayEquals(src.toFloatArray(), into.toFloatArray());
            assertThrows(IllegalArgumentException.class, () -> b.copy(t.poisoned(5), src));
            assertThrows(IllegalArgumentException.class, () -> b.copy(z, t.poisoned(2, 3)));
            assertThrows(IllegalArgumentException.class, () -> b.copy(src, src));
        }
    }
}
