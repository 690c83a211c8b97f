package io.skipgpt.tensor;

import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * A device backend for machines without a GPU: its tensors are {@link Device#CUDA} tensors (so every host accessor
 * throws, and every other backend refuses them) whose memory is in fact host memory, and its ops are the CPU
 * backend's, run on host aliases of that memory. Code meant for a device backend — the model, the trainers, the
 * server — runs here unchanged, and a forgotten host access fails the test instead of crashing a GPU machine.
 *
 * <p>It checks what the real device backend checks (every tensor on the device, copies between host and device
 * only through {@link #copy}) and counts the copies, the allocations and the ops, so tests can see round trips,
 * buffers made again and launches. It does not emulate asynchrony, precision or device index trust (the CPU
 * kernels behind it still check index values).
 */
public final class EmulatedDevice implements Backend {
    private static final OpChecks CHECK = new OpChecks(Device.CUDA);
    private final CpuBackend cpu = new CpuBackend();
    private final Set<Pointer> live = Collections.newSetFromMap(new IdentityHashMap<>());
    private long uploads, downloads, allocations;
    private final Map<String, Long> calls = new HashMap<>();

    @Override
    public String name() {
        return "emulated-cuda";
    }

    @Override
    public Device device() {
        return Device.CUDA;
    }

    /** Host-to-device copies so far. */
    public long uploads() {
        return uploads;
    }

    /** Device-to-host copies so far. */
    public long downloads() {
        return downloads;
    }

    /** Calls of an op so far ("copy" counts device-to-device copies): what a GPU would launch. */
    public long calls(String op) {
        return calls.getOrDefault(op, 0L);
    }

    /** Device tensors allocated so far. */
    public long allocations() {
        return allocations;
    }

    /** Device tensors allocated and not yet closed. */
    public int liveTensors() {
        return live.size();
    }

    @Override
    public Tensor allocate(Tensor.DType dtype, int... shape) {
        long n = Math.max(1, Tensor.product(shape));
        Pointer memory = dtype == Tensor.DType.F32 ? new FloatPointer(n) : new IntPointer(n);
        memory.zero();
        live.add(memory);
        allocations++;
        return Tensor.onDevice(dtype, shape, Device.CUDA, memory, () -> {
            if (live.remove(memory)) memory.close();
        });
    }

    @Override
    public void copy(Tensor dst, Tensor src) {
        CHECK.copy(dst, src);
        if (dst.device() == Device.CPU && src.device() != Device.CPU) downloads++;
        if (dst.device() != Device.CPU && src.device() == Device.CPU) uploads++;
        if (dst.device() != Device.CPU && src.device() != Device.CPU) calls.merge("copy", 1L, Long::sum);
        host(dst).copyFrom(host(src));
    }

    private static Tensor host(Tensor t) {
        return t == null || t.device() == Device.CPU ? t : t.hostAlias();
    }

    /** Every argument on this device (nulls allowed where the op allows them), then as host aliases. */
    private Tensor[] onDevice(String op, Tensor... ts) {
        calls.merge(op, 1L, Long::sum);
        Tensor[] out = new Tensor[ts.length];
        for (int i = 0; i < ts.length; i++) {
            if (ts[i] != null && ts[i].device() != Device.CUDA) {
                throw new IllegalArgumentException(op + ": argument " + i + " " + ts[i] + " is not on the device");
            }
            out[i] = host(ts[i]);
        }
        return out;
    }

    @Override
    public void matmul(Tensor out, Tensor x, Tensor w) {
        Tensor[] h = onDevice("matmul", out, x, w);
        cpu.matmul(h[0], h[1], h[2]);
    }

    @Override
    public void rmsnorm(Tensor out, Tensor x, Tensor weight, float eps) {
        Tensor[] h = onDevice("rmsnorm", out, x, weight);
        cpu.rmsnorm(h[0], h[1], h[2], eps);
    }

    @Override
    public void rope(Tensor x, Tensor positions, int headDim, float theta, RopeStyle style) {
        Tensor[] h = onDevice("rope", x, positions);
        cpu.rope(h[0], h[1], headDim, theta, style);
    }

    @Override
    public void attention(Tensor out, Tensor q, Tensor k, Tensor v, Tensor positions, Tensor keyStarts, int nHeads,
                          int nKvHeads, int headDim) {
        Tensor[] h = onDevice("attention", out, q, k, v, positions, keyStarts);
        cpu.attention(h[0], h[1], h[2], h[3], h[4], h[5], nHeads, nKvHeads, headDim);
    }

    @Override
    public void swiglu(Tensor out, Tensor gate, Tensor up) {
        Tensor[] h = onDevice("swiglu", out, gate, up);
        cpu.swiglu(h[0], h[1], h[2]);
    }

    @Override
    public void softmax(Tensor x) {
        cpu.softmax(onDevice("softmax", x)[0]);
    }

    @Override
    public void embedding(Tensor out, Tensor table, Tensor ids) {
        Tensor[] h = onDevice("embedding", out, table, ids);
        cpu.embedding(h[0], h[1], h[2]);
    }

    @Override
    public void gatherRows(Tensor out, Tensor src, Tensor idx) {
        Tensor[] h = onDevice("gatherRows", out, src, idx);
        cpu.gatherRows(h[0], h[1], h[2]);
    }

    @Override
    public void scatterAddRows(Tensor dst, Tensor src, Tensor idx) {
        Tensor[] h = onDevice("scatterAddRows", dst, src, idx);
        cpu.scatterAddRows(h[0], h[1], h[2]);
    }

    @Override
    public void scatterRows(Tensor dst, Tensor src, Tensor idx) {
        Tensor[] h = onDevice("scatterRows", dst, src, idx);
        cpu.scatterRows(h[0], h[1], h[2]);
    }

    @Override
    public void add(Tensor dst, Tensor src) {
        Tensor[] h = onDevice("add", dst, src);
        cpu.add(h[0], h[1]);
    }

    @Override
    public void crossEntropy(Tensor loss, Tensor logits, Tensor targets) {
        Tensor[] h = onDevice("crossEntropy", loss, logits, targets);
        cpu.crossEntropy(h[0], h[1], h[2]);
    }

    @Override
    public void rowDot(Tensor out, Tensor a, Tensor b) {
        Tensor[] h = onDevice("rowDot", out, a, b);
        cpu.rowDot(h[0], h[1], h[2]);
    }

    @Override
    public void scaleRows(Tensor x, Tensor s) {
        Tensor[] h = onDevice("scaleRows", x, s);
        cpu.scaleRows(h[0], h[1]);
    }

    @Override
    public void matmulBackward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, boolean addToDx) {
        Tensor[] h = onDevice("matmulBackward", dx, dw, dy, x, w);
        cpu.matmulBackward(h[0], h[1], h[2], h[3], h[4], addToDx);
    }

    @Override
    public void rmsnormBackward(Tensor dx, Tensor dWeight, Tensor dy, Tensor x, Tensor weight, float eps) {
        Tensor[] h = onDevice("rmsnormBackward", dx, dWeight, dy, x, weight);
        cpu.rmsnormBackward(h[0], h[1], h[2], h[3], h[4], eps);
    }

    @Override
    public void ropeBackward(Tensor dx, Tensor positions, int headDim, float theta, RopeStyle style) {
        Tensor[] h = onDevice("ropeBackward", dx, positions);
        cpu.ropeBackward(h[0], h[1], headDim, theta, style);
    }

    @Override
    public void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor q, Tensor k, Tensor v,
                                  Tensor positions, int nHeads, int nKvHeads, int headDim) {
        Tensor[] h = onDevice("attentionBackward", dq, dk, dv, dOut, q, k, v, positions);
        cpu.attentionBackward(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], nHeads, nKvHeads, headDim);
    }

    @Override
    public void swigluBackward(Tensor dGate, Tensor dUp, Tensor dOut, Tensor gate, Tensor up) {
        Tensor[] h = onDevice("swigluBackward", dGate, dUp, dOut, gate, up);
        cpu.swigluBackward(h[0], h[1], h[2], h[3], h[4]);
    }

    @Override
    public void crossEntropyBackward(Tensor dLogits, Tensor logits, Tensor targets, Tensor dLoss, float scale) {
        Tensor[] h = onDevice("crossEntropyBackward", dLogits, logits, targets, dLoss);
        cpu.crossEntropyBackward(h[0], h[1], h[2], h[3], scale);
    }

    @Override
    public void loraForward(Tensor out, Tensor x, Tensor a, Tensor b, float scale) {
        Tensor[] h = onDevice("loraForward", out, x, a, b);
        cpu.loraForward(h[0], h[1], h[2], h[3], scale);
    }

    @Override
    public void loraBackward(Tensor dx, Tensor dA, Tensor dB, Tensor dy, Tensor x, Tensor a, Tensor b, float scale) {
        Tensor[] h = onDevice("loraBackward", dx, dA, dB, dy, x, a, b);
        cpu.loraBackward(h[0], h[1], h[2], h[3], h[4], h[5], h[6], scale);
    }

    @Override
    public void routerGates(Tensor gates, Tensor soft, Tensor logits, Tensor bias, Philox noise, double tau,
                            Tensor hardGates, Tensor hardSoft) {
        Tensor[] h = onDevice("routerGates", gates, soft, logits, bias, hardGates, hardSoft);
        cpu.routerGates(h[0], h[1], h[2], h[3], noise, tau, h[4], h[5]);
    }

    @Override
    public void routerGatesBackward(Tensor dLogits, Tensor dBias, Tensor dGates, Tensor soft, float gateGrad, double tau) {
        Tensor[] h = onDevice("routerGatesBackward", dLogits, dBias, dGates, soft);
        cpu.routerGatesBackward(h[0], h[1], h[2], h[3], gateGrad, tau);
    }

    @Override
    public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamUpdate update) {
        Tensor[] h = onDevice("adamw", param, grad, m, v);
        cpu.adamw(h[0], h[1], h[2], h[3], update);
    }

    /** A value that comes back to the host: one download, as on the GPU. */
    @Override
    public double sumOfSquares(List<Tensor> xs) {
        Tensor[] h = onDevice("sumOfSquares", xs.toArray(Tensor[]::new));
        downloads++;
        return cpu.sumOfSquares(List.of(h));
    }

    @Override
    public void dropoutMask(Tensor mask, double rate, Philox noise) {
        cpu.dropoutMask(onDevice("dropoutMask", mask)[0], rate, noise);
    }
}
