package io.skipgpt.cli;

import com.google.gson.GsonBuilder;
import io.skipgpt.eval.Comparison;
import io.skipgpt.eval.ModelLogits;
import io.skipgpt.eval.Perplexity;
import io.skipgpt.eval.ZeroShot;
import io.skipgpt.eval.ZeroShotTasks;
import io.skipgpt.io.LoadedModel;
import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.tensor.Backend;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code eval --tasks ... / --compare ...}: every variant scores the same tasks (and --ppl files) on the same
 * weights, one after the other; the results come out as one markdown table (or JSON) with a column per variant.
 */
final class EvalComparison {
    private final EvalCommand command;

    EvalComparison(EvalCommand command) {
        this.command = command;
    }

    int run() throws Exception {
        List<ZeroShotTasks.Task> tasks = command.tasks == null ? List.of() : ZeroShotTasks.parse(command.tasks);
        Map<ZeroShotTasks.Task, List<ZeroShotTasks.Item>> data = new LinkedHashMap<>();
        Path dir = command.benchData != null ? command.benchData : defaultBenchData();
        for (ZeroShotTasks.Task t : tasks) {
            if (!Files.isRegularFile(dir.resolve(t.file()))) {
                throw new NoSuchFileException(dir.resolve(t.file()) + " (point --bench-data at bench/llm-foundry)");
            }
            data.put(t, ZeroShotTasks.load(t, dir, command.limit));
        }
        List<String> texts = new ArrayList<>();
        for (Path f : command.files == null ? List.<Path>of() : command.files) {
            texts.add(Files.readString(f, StandardCharsets.UTF_8));
        }
        long requests = 0;
        for (List<ZeroShotTasks.Item> items : data.values()) {
            for (ZeroShotTasks.Item item : items) requests += item.requests().size();
        }
        try (LoadedModel m = command.options.load(); Backend backend = command.options.backend();
                LoraAdapter lora = command.loraOptions.open(m.config());
                LlamaModel model = ModelOptions.model(m, backend, lora)) {
            int context = command.ctx != null ? command.ctx : m.config().contextLength();
            List<Variant> variants = Variant.open(command.compare, command.routingOptions, m.config(), backend);
            List<Comparison.Column> columns = new ArrayList<>();
            EtaProgress progress = new EtaProgress(requests * variants.size(), "requests");
            long done = 0;
            try {
                for (Variant v : variants) {
                    long t0 = System.nanoTime();
                    List<ZeroShot.TaskResult> results = new ArrayList<>();
                    try (ModelLogits logits = new ModelLogits(model, v.routing(), context)) {
                        ZeroShot zs = new ZeroShot(logits, m.tokenizer());
                        for (Map.Entry<ZeroShotTasks.Task, List<ZeroShotTasks.Item>> e : data.entrySet()) {
                            long before = done;
                            String what = e.getKey().label() + " [" + v.label() + "]";
                            ZeroShot.TaskResult r = zs.evaluate(e.getKey(), e.getValue(), n -> progress.update(before + n, what));
                            for (ZeroShotTasks.Item item : e.getValue()) done += item.requests().size();
                            System.err.printf("%s: acc %.4f over %d items%n", what, r.acc(), r.items());
                            results.add(r);
                        }
                    }
                    Perplexity.Result ppl = null;
                    if (!texts.isEmpty()) {
                        Perplexity scorer = new Perplexity(model, m.tokenizer(), context, v.routing());
                        ppl = new Perplexity.Result(0, 0, 0);
                        for (String text : texts) ppl = ppl.plus(scorer.score(text, null));
                        System.err.printf("perplexity [%s]: %.4f over %d tokens%n", v.label(), ppl.ppl(), ppl.tokens());
                    }
                    columns.add(new Comparison.Column(v.label(), results, ppl, v.stats(), (System.nanoTime() - t0) / 1e9));
                }
            } finally {
                variants.forEach(Variant::close);
            }
            Comparison comparison = new Comparison(columns);
            String json = new GsonBuilder().disableHtmlEscaping().setPrettyPrinting().create().toJson(comparison.toJson());
            String markdown = comparison.toMarkdown();
            if (command.out != null) write(command.out, json, markdown);
            System.out.println(command.json ? json : markdown);
        }
        return 0;
    }

    private static void write(Path out, String json, String markdown) throws IOException {
        Files.createDirectories(out);
        Files.writeString(out.resolve("eval.json"), json + "\n", StandardCharsets.UTF_8);
        Files.writeString(out.resolve("eval.md"), markdown, StandardCharsets.UTF_8);
        System.err.println("wrote " + out.resolve("eval.json") + " and " + out.resolve("eval.md"));
    }

    /** $SKIPGPT_DATA/bench/llm-foundry, else ../shared/data/bench/llm-foundry. */
    static Path defaultBenchData() {
        String env = System.getenv("SKIPGPT_DATA");
        Path root = env != null && !env.isBlank() ? Path.of(env) : Path.of("..", "shared", "data");
        return root.resolve("bench").resolve("llm-foundry");
    }
}
