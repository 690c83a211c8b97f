package io.skipgpt.io;

import io.skipgpt.tensor.Tensor;
import java.nio.FloatBuffer;

/**
 * The row order of Q and K projections ([heads * headDim, dim]) within each head. Internally (and in GGUF and
 * llama2.c) RoPE rotates adjacent pairs: rows 2i and 2i+1 of a head form pair i. Hugging Face checkpoints rotate
 * halves: pair i is rows i and i + headDim/2. Converting Meta weights to HF moves adjacent row 2i to row i and
 * row 2i+1 to row i + headDim/2 (convert_llama_weights_to_hf's permute: view [heads, hd/2, 2, dim],
 * transpose(1, 2)); reading HF applies the inverse.
 *
 * <p>A row order {@code order} means: row r of the result is row {@code order[r]} of the source. Anything with
 * Q or K output rows follows the same orders: a LoRA adapter's B matrices of q and k, say.
 */
public final class RopeLayout {
    private RopeLayout() {}

    /** Order that turns adjacent-pair rows into rotate-half rows (for writing HF). */
    public static int[] toRotateHalf(int rows, int heads) {
        int[] order = new int[rows];
        int hd = headDim(rows, heads), half = hd / 2;
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < half; i++) {
                order[h * hd + i] = h * hd + 2 * i;
                order[h * hd + half + i] = h * hd + 2 * i + 1;
            }
        }
        return order;
    }

    /** Order that turns rotate-half rows into adjacent-pair rows (for reading HF). */
    public static int[] toAdjacent(int rows, int heads) {
        int[] toHalf = toRotateHalf(rows, heads);
        int[] order = new int[rows];
        for (int r = 0; r < rows; r++) order[toHalf[r]] = r;
        return order;
    }

    /** dst row r = src row order[r]. */
    public static void permuteRows(Tensor src, Tensor dst, int[] order) {
        int cols = src.cols();
        if (dst.rows() != order.length || src.rows() != order.length || dst.cols() != cols) {
            throw new IllegalArgumentException("cannot permute " + src + " into " + dst);
        }
        FloatBuffer in = src.floats(), out = dst.floats();
        for (int r = 0; r < order.length; r++) out.put(r * cols, in, order[r] * cols, cols);
    }

    private static int headDim(int rows, int heads) {
        if (heads <= 0 || rows % heads != 0 || (rows / heads) % 2 != 0) {
            throw new IllegalArgumentException(rows + " rows do not split into " + heads + " heads of even size");
        }
        return rows / heads;
    }
}
