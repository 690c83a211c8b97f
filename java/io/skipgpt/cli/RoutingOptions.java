package io.skipgpt.cli;

import io.skipgpt.io.ModelFormatException;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.routing.Gate;
import io.skipgpt.routing.RouterFile;
import io.skipgpt.routing.RouterGate;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.routing.StaticSkip;
import io.skipgpt.tensor.Backend;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** How a command routes: trained routers, a static skip list, or neither (dense). */
final class RoutingOptions {
    @Option(names = "--routers", paramLabel = "FILE",
            description = "Router file (safetensors, reference tensor names) from train-routers.")
    Path routers;

    @Option(names = "--routing", paramLabel = "MODE", defaultValue = "deterministic",
            description = "With --routers: deterministic (execute iff logit 0 > logit 1) or sample (draw as in "
                    + "training). Default: ${DEFAULT-VALUE}.")
    String mode;

    @Option(names = "--routing-seed", paramLabel = "S", defaultValue = "0",
            description = "Seed of --routing sample (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--skip", paramLabel = "LIST",
            description = "Skip these modules for every token, e.g. attn:2,mlp:4 or attn:1-3 (layers from 0).")
    String skip;

    boolean active() {
        return routers != null || skip != null;
    }

    /** The value of --routing. */
    static RouterGate.Mode mode(String mode) {
        return switch (mode) {
            case "deterministic" -> RouterGate.Mode.DETERMINISTIC;
            case "sample" -> RouterGate.Mode.SAMPLE;
            default -> throw new IllegalArgumentException("--routing must be deterministic or sample, got '" + mode + "'");
        };
    }

    /** The routing for a model, its statistics collected into {@code stats}; DENSE when no option is set. */
    Routing open(LlamaConfig config, Backend backend, RoutingStats stats) throws ModelFormatException {
        if (routers != null && skip != null) throw new IllegalArgumentException("use either --routers or --skip, not both");
        Gate gate;
        if (routers != null) {
            gate = RouterGate.owning(RouterFile.read(routers, config.nLayers(), config.dim()), backend, mode(mode), seed);
        } else if (skip != null) {
            gate = StaticSkip.parse(skip, config.nLayers());
        } else {
            return Routing.DENSE;
        }
        return Routing.routed(gate, stats);
    }
}
