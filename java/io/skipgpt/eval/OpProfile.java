package io.skipgpt.eval;

import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Tensor;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * Where a forward pass spends its time, op by op: {@link #wrap} gives a {@link Backend} that runs every op of the
 * wrapped one and adds its wall time to a total per op — matmuls apart by weight shape ({@code matmul 11008x4096}
 * is the MLP's gate or up projection of LLaMA-2-7B). A dynamic proxy, so every op of the interface is timed,
 * including ones added later.
 */
public final class OpProfile {
    private final Map<String, long[]> totals = new TreeMap<>(); // op -> {nanoseconds, calls}

    public Backend wrap(Backend backend) {
        InvocationHandler timed = (proxy, method, args) -> {
            if (args == null || method.getDeclaringClass() == Object.class) return invoke(method, backend, args);
            long t0 = System.nanoTime();
            Object result = invoke(method, backend, args);
            long ns = System.nanoTime() - t0;
            String key = method.getName();
            if (key.equals("matmul")) key += " " + ((Tensor) args[2]).rows() + "x" + ((Tensor) args[2]).cols();
            long[] t = totals.computeIfAbsent(key, k -> new long[2]);
            t[0] += ns;
            t[1]++;
            return result;
        };
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, timed);
    }

    private static Object invoke(java.lang.reflect.Method method, Backend backend, Object[] args) throws Throwable {
        try {
            return method.invoke(backend, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    public void reset() {
        totals.clear();
    }

    /** Milliseconds per op since the last reset, largest first. */
    public Map<String, Double> millis() {
        Map<String, Double> out = new LinkedHashMap<>();
        totals.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue()[0], a.getValue()[0]))
                .forEach(e -> out.put(e.getKey(), e.getValue()[0] / 1e6));
        return out;
    }
}
