package io.skipgpt.train;

import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Device;
import io.skipgpt.tensor.Tensor;
import java.util.function.BiConsumer;
import java.util.function.UnaryOperator;

/**
 * Something a trainer keeps on the host (the base weights, the routers, an adapter) and what the backend's ops use in
 * its place: the host object itself on a host backend, so CPU training copies nothing, else a copy on the backend's
 * device that this owns. Trainable values train on the copy, their master copy during a run (AdamW runs there too):
 * {@link #download} refreshes the host object where the host needs it (an evaluation on the host, a result file),
 * {@link #upload} puts back a change made on the host.
 */
final class OnBackend<T extends AutoCloseable> implements AutoCloseable {
    private final T host;
    private final T copy; // null on a host backend
    private final BiConsumer<T, T> copier; // (dst, src), one side on the device

    private OnBackend(T host, Backend backend, UnaryOperator<T> upload, BiConsumer<T, T> copier) {
        this.host = host;
        this.copy = backend.device() == Device.CPU ? null : upload.apply(host);
        this.copier = copier;
    }

    static OnBackend<Tensor> of(Tensor host, Backend backend) {
        return new OnBackend<>(host, backend, backend::upload, backend::copy);
    }

    static OnBackend<LoraAdapter> of(LoraAdapter host, Backend backend) {
        return new OnBackend<>(host, backend, a -> a.uploadTo(backend), (dst, src) -> dst.copyFrom(src, backend));
    }

    /** Frozen weights: uploaded once, never copied again. */
    static OnBackend<LlamaWeights> of(LlamaWeights host, Backend backend) {
        return new OnBackend<>(host, backend, w -> w.uploadTo(backend), (dst, src) -> {
            throw new UnsupportedOperationException("the base weights are frozen");
        });
    }

    /** What the backend's ops use. */
    T get() {
        return copy == null ? host : copy;
    }

    /** The host object's contents to the device copy (nothing to do on a host backend). */
    void upload() {
        if (copy != null) copier.accept(copy, host);
    }

    /** The device copy's contents to the host object (nothing to do on a host backend). */
    void download() {
        if (copy != null) copier.accept(host, copy);
    }

    @Override
    public void close() {
        if (copy == null) return;
        try {
            copy.close();
        } catch (Exception e) { // tensors, weights and adapters close without checked exceptions
            throw new IllegalStateException(e);
        }
    }
}
