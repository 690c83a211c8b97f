package io.skipgpt.eval;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.skipgpt.routing.RoutingStats;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * Variants of one model side by side (dense, static skip, routed): zero-shot task figures, perplexity and the
 * routing figures of every position each variant ran, as JSON and as a markdown table with one column per variant.
 */
public final class Comparison {
    /**
     * One variant's results.
     *
     * @param ppl perplexity over the --ppl files, or null when none were scored
     * @param stats the decisions over every position the variant ran (tasks and perplexity)
     */
    public record Column(String label, List<ZeroShot.TaskResult> tasks, Perplexity.Result ppl, RoutingStats stats,
                         double seconds) {
        /** Mean acc over the tasks (NaN without tasks). */
        public double meanAcc() {
            return tasks.stream().mapToDouble(ZeroShot.TaskResult::acc).average().orElse(Double.NaN);
        }
    }

    private final List<Column> columns;

    public Comparison(List<Column> columns) {
        if (columns.isEmpty()) throw new IllegalArgumentException("nothing to compare");
        this.columns = List.copyOf(columns);
    }

    public JsonObject toJson() {
        JsonArray variants = new JsonArray();
        for (Column c : columns) {
            JsonObject v = new JsonObject();
            v.addProperty("variant", c.label());
            JsonObject tasks = new JsonObject();
            for (ZeroShot.TaskResult t : c.tasks()) {
                JsonObject o = new JsonObject();
                o.addProperty("items", t.items());
                put(o, "acc", t.acc());
                put(o, "acc_stderr", t.accStderr());
                put(o, "acc_norm", t.accNorm());
                put(o, "ppl", t.ppl());
                tasks.add(t.task(), o);
            }
            if (!c.tasks().isEmpty()) {
                v.add("tasks", tasks);
                v.addProperty("mean_acc", c.meanAcc());
            }
            if (c.ppl() != null) {
                JsonObject p = new JsonObject();
                p.addProperty("ppl", c.ppl().ppl());
                p.addProperty("nll", c.ppl().meanNll());
                p.addProperty("tokens", c.ppl().tokens());
                p.addProperty("documents", c.ppl().documents());
                v.add("perplexity", p);
            }
            v.add("routing", routing(c.stats()));
            v.addProperty("seconds", c.seconds());
            variants.add(v);
        }
        JsonObject o = new JsonObject();
        o.add("variants", variants);
        return o;
    }

    /** Routing figures of a run as JSON: sparsities, FLOP saving and bound, per-layer keep rates. */
    public static JsonObject routing(RoutingStats s) {
        JsonObject r = new JsonObject();
        r.addProperty("positions", s.tokens());
        r.addProperty("module_sparsity", s.moduleSparsity());
        r.addProperty("param_sparsity", s.paramSparsity());
        r.addProperty("flop_saving", s.flopSaving());
        r.addProperty("flop_bound", s.flopBound());
        JsonArray attn = new JsonArray(), mlp = new JsonArray();
        for (double x : s.attnKeep()) attn.add(x);
        for (double x : s.mlpKeep()) mlp.add(x);
        r.add("attn_keep", attn);
        r.add("mlp_keep", mlp);
        return r;
    }

    public String toMarkdown() {
        StringBuilder b = new StringBuilder();
        b.append("| task | metric |");
        for (Column c : columns) b.append(' ').append(c.label().replace("|", "\\|")).append(" |");
        b.append("\n|---|---|");
        b.append("---:|".repeat(columns.size())).append('\n');
        List<ZeroShot.TaskResult> first = columns.get(0).tasks();
        for (int t = 0; t < first.size(); t++) {
            int i = t;
            ZeroShot.TaskResult r = first.get(t);
            String name = r.task() + " (n=" + r.items() + ")";
            row(b, name, "acc", c -> {
                ZeroShot.TaskResult x = c.tasks().get(i);
                return Double.isNaN(x.accStderr()) ? fmt(x.acc()) : fmt(x.acc()) + " ± " + fmt(x.accStderr());
            });
            if (!Double.isNaN(r.accNorm())) row(b, "", "acc_norm", c -> fmt(c.tasks().get(i).accNorm()));
            if (!Double.isNaN(r.ppl())) row(b, "", "ppl", c -> String.format(Locale.ROOT, "%.2f", c.tasks().get(i).ppl()));
        }
        if (!first.isEmpty()) row(b, "**mean**", "acc", c -> fmt(c.meanAcc()));
        if (columns.get(0).ppl() != null) {
            row(b, "text (" + columns.get(0).ppl().tokens() + " tokens)", "ppl",
                    c -> String.format(Locale.ROOT, "%.4f", c.ppl().ppl()));
        }
        row(b, "routing", "module sparsity", c -> fmt(c.stats().moduleSparsity()));
        row(b, "", "param sparsity", c -> fmt(c.stats().paramSparsity()));
        row(b, "", "FLOP saving", c -> fmt(c.stats().flopSaving()));
        row(b, "", "attn keep / layer", c -> rates(c.stats().attnKeep()));
        row(b, "", "mlp keep / layer", c -> rates(c.stats().mlpKeep()));
        row(b, "", "seconds", c -> String.format(Locale.ROOT, "%.1f", c.seconds()));
        return b.toString();
    }

    private void row(StringBuilder b, String task, String metric, Function<Column, String> cell) {
        b.append("| ").append(task).append(" | ").append(metric).append(" |");
        for (Column c : columns) b.append(' ').append(cell.apply(c)).append(" |");
        b.append('\n');
    }

    private static String rates(double[] r) {
        return numbers(r, 2);
    }

    /** Values separated by spaces with {@code decimals} decimals (a dot, whatever the locale): one per layer, say. */
    public static String numbers(double[] values, int decimals) {
        List<String> parts = new ArrayList<>();
        for (double x : values) parts.add(String.format(Locale.ROOT, "%." + decimals + "f", x));
        return String.join(" ", parts);
    }

    private static String fmt(double x) {
        return String.format(Locale.ROOT, "%.3f", x);
    }

    private static void put(JsonObject o, String key, double value) {
        if (!Double.isNaN(value)) o.addProperty(key, value);
    }
}
