package io.skipgpt.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.model.KvCache;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import java.awt.Font;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PlotsTest {
    @Test
    void keepHeatmapOfADeepModel(@TempDir Path dir) throws IOException {
        SplittableRandom rnd = new SplittableRandom(3);
        double[] attn = new double[32], mlp = new double[32];
        for (int l = 0; l < 32; l++) {
            attn[l] = rnd.nextDouble();
            mlp[l] = 0.5 + rnd.nextDouble() / 2;
        }
        Path png = dir.resolve("keep.png");
        Plots.write(Plots.keepHeatmap("keep rate per layer", attn, mlp), png);
        BufferedImage img = PngCheck.assertPng(png, 33 * 30, 2 * 64);
        // the mean column of the attention row is coloured by the mean keep rate
        double mean = java.util.Arrays.stream(attn).average().orElseThrow();
        int meanX = img.getWidth() - 1;
        boolean found = false;
        for (int x = 0; x < meanX && !found; x++) found = img.getRGB(x, 64 + 5) == Plots.viridis(mean).getRGB();
        assertTrue(found, "a cell in the colour of the mean keep rate " + mean);
        assertThrows(IllegalArgumentException.class, () -> Plots.keepHeatmap("t", new double[3], new double[2]));
    }

    @Test
    void tokenMapWithTheTextAlongTheAxis(@TempDir Path dir) throws IOException {
        int layers = 6, n = 40;
        List<String> tokens = new ArrayList<>();
        boolean[][] attn = new boolean[layers][n], mlp = new boolean[layers][n];
        SplittableRandom rnd = new SplittableRandom(8);
        for (int i = 0; i < n; i++) tokens.add(i == 0 ? "<s>" : " word" + i);
        for (int l = 0; l < layers; l++) {
            for (int i = 0; i < n; i++) {
                attn[l][i] = rnd.nextDouble() < 0.7;
                mlp[l][i] = rnd.nextDouble() < 0.9;
            }
        }
        Path png = dir.resolve("tokens.png");
        Plots.write(Plots.tokenMap("modules run per token", tokens, attn, mlp), png);
        BufferedImage img = PngCheck.assertPng(png, n * 18, 2 * layers * 12);
        assertTrue(img.getHeight() > 2 * layers * 12 + 60, "room for the token texts under the panels");
        assertEquals("\u00b7word", Plots.visible(" word", new Font(Font.MONOSPACED, Font.PLAIN, 12)));
        assertEquals("abcdefghijklm\u2026", Plots.visible("abcdefghijklmnopqrstu", new Font(Font.MONOSPACED, Font.PLAIN, 12)));
        assertThrows(IllegalArgumentException.class, () -> Plots.tokenMap("t", tokens, attn, new boolean[layers][3]));
    }

    @Test
    void trainingCurvesFromALog(@TempDir Path dir) throws IOException {
        Path log = dir.resolve("train.jsonl");
        StringBuilder b = new StringBuilder();
        for (int s = 1; s <= 60; s++) {
            double tau = 5 - 4.0 * (s - 1) / 59;
            b.append(String.format(java.util.Locale.ROOT, "{\"step\":%d,\"loss\":%.4f,\"ce\":%.4f,\"penalty\":0.1,"
                    + "\"sparsity\":%.3f,\"attn_keep\":%.3f,\"mlp_keep\":%.3f,\"tau\":%.3f,\"lr\":0.002}%n", s,
                    3 + 2.0 / s, 2.9 + 2.0 / s, 0.25 + 0.1 / s, 0.7, 0.8, tau));
            if (s % 20 == 0) b.append(String.format("{\"step\":%d,\"eval_nll\":1.2,\"eval_ppl\":%.2f,\"eval_sparsity\":0.24}%n", s, 4.0 - s / 60.0));
        }
        b.append("{\"step\":61,\"loss\":2.");
        Files.writeString(log, b);
        TrainLog t = TrainLog.read(log);
        assertEquals(60, t.series("loss").steps().length, "the torn last line is left out");
        assertArrayEquals(new double[] {20, 40, 60}, t.series("eval_ppl").steps());
        assertNull(t.series("nonsense"));
        Path png = dir.resolve("training.png");
        Plots.write(Plots.trainingCurves("router training", t), png);
        PngCheck.assertPng(png, 1000, 4 * 200);
        Files.writeString(log, "{\"step\":1,\"loss\":2}\nnot json\n{\"step\":2,\"loss\":1}\n");
        assertThrows(IOException.class, () -> TrainLog.read(log));
    }

    @Test
    void recordingGateKeepsEveryDecisionInPositionOrder() {
        LlamaConfig config = StaticSkipSearchTest.CONFIG;
        try (LlamaWeights w = RandomWeights.create(config, 2); Backend b = new CpuBackend();
                LlamaModel model = new LlamaModel(config, w, b); KvCache cache = model.newCache(8)) {
            RecordingGate rec = new RecordingGate(new RandomGate(0.5, 3), config.nLayers());
            RoutingStats stats = new RoutingStats(config);
            model.forward(new int[] {1, 5, 9, 13, 17}, cache, null, Routing.routed(rec, stats));
            model.forward(new int[] {21}, cache, null, Routing.routed(rec, stats));
            assertEquals(6, rec.positions());
            boolean[][] attn = rec.attention(), mlp = rec.mlp();
            // the same seed decides the same, row by row and layer by layer: prefill of 5, then one more row
            RandomGate again = new RandomGate(0.5, 3);
            boolean[] a = new boolean[5], m = new boolean[5];
            try (io.skipgpt.tensor.Tensor x = io.skipgpt.tensor.Tensor.f32(5, 1)) {
                again.decide(0, x, a, m);
            }
            for (int i = 0; i < 5; i++) {
                assertEquals(a[i], attn[0][i]);
                assertEquals(m[i], mlp[0][i]);
            }
            for (int l = 0; l < config.nLayers(); l++) {
                int kept = 0;
                for (boolean k : attn[l]) kept += k ? 1 : 0;
                assertEquals(stats.attnKeep()[l], kept / 6.0, 1e-12, "layer " + l);
            }
        }
    }
}
