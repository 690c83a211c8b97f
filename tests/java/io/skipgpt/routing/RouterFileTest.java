package io.skipgpt.routing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.io.ModelFormatException;
import io.skipgpt.io.Safetensors;
import io.skipgpt.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Router files carry the reference implementation's tensor names and shapes, and round-trip exactly. */
class RouterFileTest {
    @Test
    void roundTripWithReferenceNames(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("routers.safetensors");
        try (Routers r = Routers.initialise(3, 10, 42)) {
            r.bias().set(5, 0.75f);
            RouterFile.write(file, r);
            Map<String, Tensor> raw = Safetensors.readAll(file);
            try {
                assertEquals(12, raw.size());
                Tensor w = raw.get("model.layers.1.router_attention.weight_predictor.weight");
                assertArrayEquals(new int[] {2, 10}, w.shape());
                assertArrayEquals(r.weight().rows(4, 2).toFloatArray(), w.toFloatArray());
                Tensor b = raw.get("model.layers.1.router_attention.weight_predictor.bias");
                assertArrayEquals(new int[] {2}, b.shape());
                assertEquals(0.75f, b.get(1));
                assertArrayEquals(r.weight().rows(10, 2).toFloatArray(),
                        raw.get("model.layers.2.router_mlp.weight_predictor.weight").toFloatArray());
            } finally {
                raw.values().forEach(Tensor::close);
            }
            try (Routers back = RouterFile.read(file, 3, 10)) {
                assertArrayEquals(r.weight().toFloatArray(), back.weight().toFloatArray());
                assertArrayEquals(r.bias().toFloatArray(), back.bias().toFloatArray());
            }
        }
    }

    @Test
    void wrongModelOrMissingTensorsAreNamed(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("routers.safetensors");
        try (Routers r = Routers.initialise(2, 8, 1)) {
            RouterFile.write(file, r);
        }
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> RouterFile.read(file, 2, 16));
        assertTrue(e.getMessage().startsWith(file.toString()) && e.getMessage().contains("[2, 8]")
                && e.getMessage().contains("[2, 16]"), e.getMessage());
        e = assertThrows(ModelFormatException.class, () -> RouterFile.read(file, 3, 8));
        assertTrue(e.getMessage().contains("missing router tensor model.layers.2.router_attention"), e.getMessage());
        e = assertThrows(ModelFormatException.class, () -> RouterFile.read(file, 1, 8));
        assertTrue(e.getMessage().contains("more than the model's 1 layers"), e.getMessage());

        Path partial = dir.resolve("partial.safetensors");
        Map<String, Tensor> one = new LinkedHashMap<>();
        try (Tensor w = Tensor.f32(2, 8)) {
            one.put("model.layers.0.router_attention.weight_predictor.weight", w);
            Safetensors.write(partial, one, Map.of());
        }
        e = assertThrows(ModelFormatException.class, () -> RouterFile.read(partial, 1, 8));
        assertTrue(e.getMessage().contains("router_attention.weight_predictor.bias"), e.getMessage());
        Files.writeString(dir.resolve("junk.safetensors"), "not a safetensors file");
        assertThrows(ModelFormatException.class, () -> RouterFile.read(dir.resolve("junk.safetensors"), 1, 8));
    }
}
