package io.skipgpt.train;

import io.skipgpt.eval.Perplexity;
import io.skipgpt.model.Adapter;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.routing.Gate;
import io.skipgpt.routing.RouterGate;
import io.skipgpt.routing.Routers;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.tensor.Backend;
import java.util.List;

/**
 * Held-out figures of a model the way inference runs it: perplexity over a dataset's held-out examples, with
 * deterministic routing from the routers (dense without them) and the adapter unmerged, and what the routing did.
 */
public record HeldOut(double nll, double ppl, double moduleSparsity, double flopSaving, double[] attnKeep,
                      double[] mlpKeep) {
    /** Scores {@code data}'s held-out examples; {@code routers} may be null (dense). */
    public static HeldOut evaluate(LlamaConfig config, LlamaWeights weights, Backend backend, TokenDataset data,
                                   Routers routers, Adapter adapter) {
        try (RouterGate gate = routers == null ? null
                : new RouterGate(routers, backend, RouterGate.Mode.DETERMINISTIC, 0)) {
            return evaluate(config, weights, backend, data.heldOut(), gate == null ? Gate.DENSE : gate, adapter);
        }
    }

    /**
     * Scores whole examples ({@link TokenDataset#heldOut}, {@link TokenDataset#trainHead}) from an empty cache
     * apiece, routed by {@code gate} (deterministic; {@link Gate#DENSE} without routers), which the caller owns.
     */
    static HeldOut evaluate(LlamaConfig config, LlamaWeights weights, Backend backend, List<int[]> examples,
                            Gate gate, Adapter adapter) {
        RoutingStats stats = new RoutingStats(config);
        try (LlamaModel model = new LlamaModel(config, weights, backend, adapter)) {
            Routing routing = Routing.routed(gate, stats);
            int longest = 2; // the least context perplexity takes, for want of examples
            for (int[] ids : examples) longest = Math.max(longest, ids.length);
            // A context of the longest example: each is one window.
            Perplexity.Result total = new Perplexity(model, null, longest, routing).score(examples, null);
            return new HeldOut(total.meanNll(), total.ppl(), stats.moduleSparsity(), stats.flopSaving(),
                    stats.attnKeep(), stats.mlpKeep());
        }
    }
}
