package io.skipgpt.routing;

import io.skipgpt.io.ModelFormatException;
import io.skipgpt.io.Safetensors;
import io.skipgpt.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Router files: safetensors with the reference implementation's tensor names,
 * {@code model.layers.{i}.router_attention.weight_predictor.weight} [2, dim] and {@code .bias} [2], and
 * {@code router_mlp} likewise, so router files move between this project and the reference code.
 */
public final class RouterFile {
    private RouterFile() {}

    static String name(int layer, String module, String param) {
        return "model.layers." + layer + "." + module + ".weight_predictor." + param;
    }

    public static void write(Path file, Routers routers) throws IOException {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (int l = 0; l < routers.layers(); l++) {
            // Views of the [4, dim] block: rows 0-1 attention, rows 2-3 MLP.
            tensors.put(name(l, "router_attention", "weight"), routers.weight().rows(4 * l, 2));
            tensors.put(name(l, "router_attention", "bias"), routers.bias().rows(4 * l, 2).reshape(2));
            tensors.put(name(l, "router_mlp", "weight"), routers.weight().rows(4 * l + 2, 2));
            tensors.put(name(l, "router_mlp", "bias"), routers.bias().rows(4 * l + 2, 2).reshape(2));
        }
        Safetensors.write(file, tensors, Map.of("format", "skipgpt-routers", "layers",
                Integer.toString(routers.layers()), "dim", Integer.toString(routers.dim())));
    }

    /** Reads routers for a model of {@code layers} layers and width {@code dim}; every tensor must be there. */
    public static Routers read(Path file, int layers, int dim) throws ModelFormatException {
        Map<String, Tensor> tensors = Safetensors.readAll(file);
        Routers routers = new Routers(layers, dim);
        try {
            for (int l = 0; l < layers; l++) {
                copy(file, tensors, name(l, "router_attention", "weight"), new int[] {2, dim}, routers.weight().rows(4 * l, 2));
                copy(file, tensors, name(l, "router_attention", "bias"), new int[] {2}, routers.bias().rows(4 * l, 2));
                copy(file, tensors, name(l, "router_mlp", "weight"), new int[] {2, dim}, routers.weight().rows(4 * l + 2, 2));
                copy(file, tensors, name(l, "router_mlp", "bias"), new int[] {2}, routers.bias().rows(4 * l + 2, 2));
            }
            String extra = name(layers, "router_attention", "weight");
            if (tensors.containsKey(extra)) {
                throw new ModelFormatException(file, "has routers for more than the model's " + layers + " layers");
            }
            return routers;
        } catch (ModelFormatException e) {
            routers.close();
            throw e;
        } finally {
            tensors.values().forEach(Tensor::close);
        }
    }

    private static void copy(Path file, Map<String, Tensor> tensors, String name, int[] shape, Tensor into)
            throws ModelFormatException {
        Tensor t = tensors.get(name);
        if (t == null) throw new ModelFormatException(file, "missing router tensor " + name);
        if (!Arrays.equals(t.shape(), shape)) {
            throw new ModelFormatException(file, "router tensor " + name + " has shape " + Arrays.toString(t.shape())
                    + ", expected " + Arrays.toString(shape) + " for this model");
        }
        into.f32().put(t.toFloatArray());
    }
}
