package io.skipgpt.cli;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.skipgpt.eval.Bench;
import io.skipgpt.io.LoadedModel;
import io.skipgpt.io.ModelLoader;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.ModelShapes;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.tensor.Backend;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Prefill (pp) and decode (tg) speed in tokens/s: warm-up, repetitions, median and range.",
                "Either a real model (--model) or a random model of a real architecture (--shape) with fewer layers."},
        footer = {"", "Examples:",
                "  skipgpt bench --model ../shared/data/models/stories260K/stories260K.gguf",
                "  skipgpt bench --shape llama2-7b --layers 2 --pp 128 --tg 16 --json"})
final class BenchCommand implements Callable<Integer> {
    static final class Source {
        @Option(names = {"-m", "--model"}, paramLabel = "PATH", description = "A model file or directory.")
        Path model;

        @Option(names = "--shape", paramLabel = "NAME",
                description = "A random model of this architecture: llama2-7b, llama3-8b or tiny.")
        String shape;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    @Option(names = "--layers", defaultValue = "2", paramLabel = "N",
            description = "Decoder layers of a --shape model (default: ${DEFAULT-VALUE}; 0 = all).")
    int layers;

    @Option(names = "--pp", defaultValue = "128", paramLabel = "N", description = "Prompt tokens (default: ${DEFAULT-VALUE}).")
    int pp;

    @Option(names = "--tg", defaultValue = "32", paramLabel = "N", description = "Generated tokens (default: ${DEFAULT-VALUE}).")
    int tg;

    @Option(names = "--reps", defaultValue = "3", paramLabel = "N", description = "Timed repetitions (default: ${DEFAULT-VALUE}).")
    int reps;

    @Option(names = "--warmup", defaultValue = "1", paramLabel = "N", description = "Untimed warm-up runs (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--device", defaultValue = "auto", paramLabel = "DEVICE", description = "auto, cpu or cuda.")
    String device;

    @Option(names = "--json", description = "Print one JSON object instead of a table.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        String what;
        LlamaConfig config;
        LlamaWeights weights;
        if (source.model != null) {
            LoadedModel loaded = ModelLoader.load(source.model, null);
            config = loaded.config();
            weights = loaded.weights();
            what = source.model.toString();
        } else {
            config = ModelShapes.named(source.shape, layers);
            System.err.printf("building a random %s model with %d layers (%,d parameters)...%n", source.shape,
                    config.nLayers(), config.parameterCount());
            weights = RandomWeights.create(config, 1234);
            what = source.shape + " x" + config.nLayers() + " layers (random weights)";
        }
        if (pp > config.contextLength() || tg > config.contextLength()) {
            throw new IllegalArgumentException("--pp and --tg must fit the context of " + config.contextLength());
        }
        // Closing the weights frees a loaded model too: LoadedModel owns nothing else native.
        try (weights; Backend backend = ModelOptions.openForModel(device);
                LlamaModel model = new LlamaModel(config, weights, backend)) {
            Bench bench = new Bench(model, 42);
            List<Bench.Figures> figures = List.of(bench.prefill(pp, warmup, reps), bench.decode(tg, warmup, reps));
            if (json) {
                JsonObject o = new JsonObject();
                o.addProperty("model", what);
                o.addProperty("device", backend.name());
                o.addProperty("threads", Runtime.getRuntime().availableProcessors());
                JsonArray rows = new JsonArray();
                for (Bench.Figures f : figures) {
                    JsonObject r = new JsonObject();
                    r.addProperty("test", f.label());
                    r.addProperty("tokens_per_s", f.median());
                    r.addProperty("min", f.min());
                    r.addProperty("max", f.max());
                    r.addProperty("reps", f.reps());
                    rows.add(r);
                }
                o.add("results", rows);
                System.out.println(new GsonBuilder().create().toJson(o));
            } else {
                System.out.printf("| model | device | test | tok/s (median) | min | max |%n|---|---|---|---:|---:|---:|%n");
                for (Bench.Figures f : figures) {
                    System.out.printf("| %s | %s | %s | %.2f | %.2f | %.2f |%n", what, backend.name(), f.label(),
                            f.median(), f.min(), f.max());
                }
            }
        }
        return 0;
    }
}
