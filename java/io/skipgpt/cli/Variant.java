package io.skipgpt.cli;

import io.skipgpt.io.ModelFormatException;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.routing.Gate;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.tensor.Backend;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One column of a side-by-side comparison: the same weights run dense ({@code dense}), with a static skip set
 * ({@code skip:attn:2,mlp:4}) or with trained routers ({@code routers:FILE}, routed as --routing says). Every
 * variant counts its decisions, dense included (sparsity 0), so all columns report the same figures.
 */
record Variant(String label, Routing routing, RoutingStats stats) implements AutoCloseable {
    static final String SYNTAX = "dense, skip:LIST (e.g. skip:attn:2,mlp:4) or routers:FILE";

    /** The variants of --compare, or the one that --routers / --skip (or neither: dense) describe. */
    static List<Variant> open(List<String> specs, RoutingOptions options, LlamaConfig config, Backend backend)
            throws ModelFormatException {
        if (specs == null || specs.isEmpty()) {
            String only = options.routers != null ? "routers:" + options.routers
                    : options.skip != null ? "skip:" + options.skip : "dense";
            if (options.routers != null && options.skip != null) {
                throw new IllegalArgumentException("use either --routers or --skip, not both");
            }
            specs = List.of(only);
        } else if (options.active()) {
            throw new IllegalArgumentException("--compare names every variant; drop --routers / --skip");
        }
        List<Variant> variants = new ArrayList<>();
        try {
            for (String spec : specs) variants.add(parse(spec.strip(), options, config, backend));
        } catch (RuntimeException | ModelFormatException e) {
            variants.forEach(Variant::close);
            throw e;
        }
        return variants;
    }

    static Variant parse(String spec, RoutingOptions base, LlamaConfig config, Backend backend) throws ModelFormatException {
        RoutingStats stats = new RoutingStats(config);
        if (spec.equals("dense")) return new Variant(spec, Routing.routed(Gate.DENSE, stats), stats);
        int colon = spec.indexOf(':');
        String kind = colon < 0 ? spec : spec.substring(0, colon);
        String value = colon < 0 ? "" : spec.substring(colon + 1).strip();
        if (value.isEmpty() || !(kind.equals("skip") || kind.equals("routers"))) {
            throw new IllegalArgumentException("--compare '" + spec + "': expected " + SYNTAX);
        }
        RoutingOptions o = new RoutingOptions();
        o.mode = base.mode;
        o.seed = base.seed;
        if (kind.equals("skip")) {
            o.skip = value;
        } else {
            o.routers = Path.of(value);
        }
        return new Variant(spec, o.open(config, backend, stats), stats);
    }

    @Override
    public void close() {
        routing.close();
    }
}
