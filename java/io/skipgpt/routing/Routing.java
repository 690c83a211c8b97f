package io.skipgpt.routing;

/**
 * How a forward pass routes: which gate decides, whether skipped work is really skipped ({@code ROUTED}: gather
 * the kept rows, run the sublayer on them only, scatter-add back) or computed and multiplied by the 0/1 gate
 * ({@code MASKED_DENSE}: the reference the routed path must match, and the path training uses), and where the
 * decisions are counted (may be null). Closing it closes its gate.
 */
public record Routing(Gate gate, Execution execution, RoutingStats stats) implements AutoCloseable {
    public enum Execution { ROUTED, MASKED_DENSE }

    /** No routing: every module runs for every token. */
    public static final Routing DENSE = new Routing(Gate.DENSE, Execution.ROUTED, null);

    public static Routing routed(Gate gate, RoutingStats stats) {
        return new Routing(gate, Execution.ROUTED, stats);
    }

    @Override
    public void close() {
        gate.close();
    }
}
