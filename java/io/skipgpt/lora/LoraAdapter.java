package io.skipgpt.lora;

import io.skipgpt.model.Adapter;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.Projection;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Tensor;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A LoRA adapter on a model: for every layer and every target projection W [out, in], matrices A [r, in] and
 * B [out, r], so that the projection computes {@code x·Wᵀ + scale·(x·Aᵀ)·Bᵀ}, scale = alpha / r. Kept unmerged:
 * as an {@link Adapter} the model adds the term after each base projection (fused kernel, the [n, r] intermediate
 * never stored); {@link #mergeInto} folds it into the weights instead. B rows of q and k follow the model's
 * internal adjacent-pair RoPE order, like the weights they add to.
 *
 * <p>All matrices are views of one allocation, so an adapter moves between the host and a device in one copy
 * ({@link #uploadTo}, {@link #copyFrom}). The factories make host adapters, but for a gradient made on a device;
 * {@link #uploadTo} makes device ones.
 */
public final class LoraAdapter implements Adapter, AutoCloseable {
    private final LoraConfig config;
    private final LlamaConfig model;
    private final Tensor storage; // [size(model, config), 1]: every A and B, on one device
    private final Map<Projection, Tensor[]> a = new EnumMap<>(Projection.class); // per target: [layer] -> [r, in]
    private final Map<Projection, Tensor[]> b = new EnumMap<>(Projection.class); // per target: [layer] -> [out, r]

    /** An adapter over {@code storage}, which it owns: per target, per layer, A then B, back to back. */
    private LoraAdapter(LlamaConfig model, LoraConfig config, Tensor storage) {
        this.model = model;
        this.config = config;
        this.storage = storage;
        int r = config.rank(), offset = 0;
        for (Projection p : config.targets()) {
            Tensor[] as = new Tensor[model.nLayers()], bs = new Tensor[model.nLayers()];
            for (int l = 0; l < model.nLayers(); l++) {
                as[l] = storage.rows(offset, r * p.inDim(model)).reshape(r, p.inDim(model));
                offset += r * p.inDim(model);
                bs[l] = storage.rows(offset, p.outDim(model) * r).reshape(p.outDim(model), r);
                offset += p.outDim(model) * r;
            }
            a.put(p, as);
            b.put(p, bs);
        }
    }

    private LoraAdapter(LlamaConfig model, LoraConfig config) {
        this(model, config, Tensor.f32(size(model, config), 1));
    }

    // Floats of all matrices together; one tensor holds them, so their count must fit its int shape.
    private static int size(LlamaConfig model, LoraConfig config) {
        long n = 0;
        for (Projection p : config.targets()) n += (long) config.rank() * (p.inDim(model) + p.outDim(model));
        n *= model.nLayers();
        if (n > Integer.MAX_VALUE) throw new IllegalArgumentException("a LoRA adapter of " + n + " floats is too large");
        return (int) n;
    }

    /** All matrices zero: an adapter's gradient, or one to read into. */
    public static LoraAdapter zeros(LlamaConfig model, LoraConfig config) {
        return new LoraAdapter(model, config);
    }

    /** All matrices zero, on a backend's device: an adapter's gradient where the backend's ops add into it. */
    public static LoraAdapter zeros(LlamaConfig model, LoraConfig config, Backend backend) {
        return new LoraAdapter(model, config, backend.allocate(Tensor.DType.F32, size(model, config), 1));
    }

    /**
     * PEFT's initialisation: A Kaiming-uniform with a = sqrt(5), i.e. uniform in ±1/sqrt(in) (torch's default for a
     * Linear layer), B zero — so a fresh adapter leaves the model unchanged and only B moves first.
     */
    public static LoraAdapter initialise(LlamaConfig model, LoraConfig config, long seed) {
        LoraAdapter adapter = new LoraAdapter(model, config);
        SplittableRandom rng = new SplittableRandom(seed);
        for (Projection p : config.targets()) {
            double bound = 1 / Math.sqrt(p.inDim(model));
            for (Tensor t : adapter.a.get(p)) {
                for (long i = 0; i < t.size(); i++) t.set(i, (float) ((rng.nextDouble() * 2 - 1) * bound));
            }
        }
        return adapter;
    }

    public LoraConfig config() {
        return config;
    }

    /** The model shape this adapter was made for. */
    public LlamaConfig model() {
        return model;
    }

    public boolean adapts(Projection p) {
        return a.containsKey(p);
    }

    /** A [r, in] of a target projection at a layer. */
    public Tensor a(int layer, Projection p) {
        return target(a, p)[layer];
    }

    /** B [out, r] of a target projection at a layer. */
    public Tensor b(int layer, Projection p) {
        return target(b, p)[layer];
    }

    /** Every matrix by a stable name ({@code lora.<layer>.<projection>.a} / {@code .b}), for checkpoints. */
    public Map<String, Tensor> tensors() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (int l = 0; l < model.nLayers(); l++) {
            for (Projection p : config.targets()) {
                out.put("lora." + l + "." + p.shortName() + ".a", a(l, p));
                out.put("lora." + l + "." + p.shortName() + ".b", b(l, p));
            }
        }
        return out;
    }

    /**
     * A copy of this adapter on a backend's device, owned by the caller (close it): one upload. On a host backend it
     * is still a copy, so the caller owns and closes either the same way.
     */
    public LoraAdapter uploadTo(Backend backend) {
        return new LoraAdapter(model, config, backend.upload(storage));
    }

    /** Itself when its matrices live on the backend's device, else {@link #uploadTo} there. */
    @Override
    public Adapter on(Backend backend) {
        return storage.device() == backend.device() ? this : uploadTo(backend);
    }

    /**
     * Sets every matrix to src's (an adapter of the same shape), in one copy through {@code backend}: host to device,
     * device to host, or on one device.
     */
    public void copyFrom(LoraAdapter src, Backend backend) {
        if (!src.config.equals(config) || !src.model.equals(model)) {
            throw new IllegalArgumentException("copyFrom: adapters of different shapes");
        }
        backend.copy(storage, src.storage);
    }

    /** out += scale·(x·Aᵀ)·Bᵀ for the targets; nothing for the other projections. */
    @Override
    public void addTo(Tensor out, Tensor x, int layer, Projection p, Backend backend) {
        if (adapts(p)) backend.loraForward(out, x, a(layer, p), b(layer, p), config.scale());
    }

    /** Folds the adapter into the weights: W += scale·B·A for every target of every layer. */
    public void mergeInto(LlamaWeights weights, Backend backend) {
        if (weights.layers().size() != model.nLayers()) {
            throw new IllegalArgumentException("adapter for " + model.nLayers() + " layers, model has " + weights.layers().size());
        }
        int r = config.rank();
        for (Projection p : config.targets()) {
            int in = p.inDim(model), out = p.outDim(model);
            try (Tensor scaledB = Tensor.f32(out, r); Tensor aT = Tensor.f32(in, r); Tensor delta = Tensor.f32(out, in)) {
                for (int l = 0; l < model.nLayers(); l++) {
                    Tensor al = a(l, p), bl = b(l, p);
                    for (long i = 0; i < scaledB.size(); i++) scaledB.set(i, bl.get(i) * config.scale());
                    for (int t = 0; t < r; t++) {
                        for (int c = 0; c < in; c++) aT.set((long) c * r + t, al.get((long) t * in + c));
                    }
                    backend.matmul(delta, scaledB, aT); // delta[out, in] = (scale·B)·A
                    backend.add(p.of(weights.layers().get(l)), delta);
                }
            }
        }
    }

    private static Tensor[] target(Map<Projection, Tensor[]> m, Projection p) {
        Tensor[] t = m.get(p);
        if (t == null) throw new IllegalArgumentException("this adapter does not adapt " + p.shortName());
        return t;
    }

    @Override
    public void close() {
        storage.close();
    }
}
