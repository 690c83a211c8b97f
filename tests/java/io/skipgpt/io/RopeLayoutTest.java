package io.skipgpt.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import io.skipgpt.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

class RopeLayoutTest {
    /**
     * HF's convert_llama_weights_to_hf permute, written out independently:
     * w.view(heads, hd/2, 2, cols).transpose(1, 2).reshape(rows, cols), i.e. out[h][j][i] = in[h][i][j].
     */
    static float[] hfPermute(float[] w, int heads, int rows, int cols) {
        int hd = rows / heads;
        float[] out = new float[w.length];
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < hd / 2; i++) {
                for (int j = 0; j < 2; j++) {
                    int inRow = h * hd + i * 2 + j, outRow = h * hd + j * (hd / 2) + i;
                    System.arraycopy(w, inRow * cols, out, outRow * cols, cols);
                }
            }
        }
        return out;
    }

    @Test
    void writingOrderIsHfPermuteAndReadingOrderUndoesIt() {
        Random rnd = new Random(5);
        for (int[] shape : new int[][] {{48, 48, 6}, {16, 48, 2}, {8, 3, 1}}) {
            int rows = shape[0], cols = shape[1], heads = shape[2];
            float[] adjacent = new float[rows * cols];
            for (int i = 0; i < adjacent.length; i++) adjacent[i] = rnd.nextFloat();
            try (Tensor src = Tensor.of(adjacent, rows, cols); Tensor hf = Tensor.f32(rows, cols);
                 Tensor back = Tensor.f32(rows, cols)) {
                RopeLayout.permuteRows(src, hf, RopeLayout.toRotateHalf(rows, heads));
                assertArrayEquals(hfPermute(adjacent, heads, rows, cols), hf.toFloatArray());
                RopeLayout.permuteRows(hf, back, RopeLayout.toAdjacent(rows, heads));
                assertArrayEquals(adjacent, back.toFloatArray());
            }
        }
    }
}
