package io.skipgpt.cli;

import io.skipgpt.tensor.CpuBackend;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"SkipGPT end to end on the bundled real model, in a few minutes on 2 cores: prune stories260K",
                "(trained on tinystories_valid_part2.txt, evaluated on tinystories_valid_head.txt at context 512) at",
                "sparsity 0.25. Prints the prune command it runs; see prune --help for what it writes."},
        footer = {"", "Example:",
                "  skipgpt demo                                   # writes runs/demo/report.md and the models",
                "  skipgpt demo --sparsity 0.4 --out runs/demo40"})
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--data-dir", paramLabel = "DIR",
            description = "The shared data folder (default: $SKIPGPT_DATA, else ../shared/data).")
    Path dataDir;

    @Option(names = "--out", defaultValue = "runs/demo", paramLabel = "DIR", description = "Output directory (default: ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--sparsity", defaultValue = "0.25", paramLabel = "T", description = "Target sparsity (default: ${DEFAULT-VALUE}).")
    double sparsity;

    @Option(names = "--resume", description = "Continue an interrupted demo from its checkpoints.")
    boolean resume;

    @Override
    public Integer call() throws Exception {
        String env = System.getenv("SKIPGPT_DATA");
        Path root = dataDir != null ? dataDir : env != null && !env.isBlank() ? Path.of(env) : Path.of("..", "shared", "data");
        Path model = root.resolve("models/stories260K/stories260K.gguf");
        Path train = root.resolve("text/tinystories_valid_part2.txt"), test = root.resolve("text/tinystories_valid_head.txt");
        for (Path p : List.of(model, train, test)) {
            if (!Files.isRegularFile(p)) {
                throw new IllegalArgumentException(p + ": not found (the demo needs the shared data folder: --data-dir DIR "
                        + "or SKIPGPT_DATA)");
            }
        }
        List<String> args = new ArrayList<>(List.of("prune", "--model", model.toString(), "--data", train.toString(),
                "--eval", test.toString(), "--ctx", "512", "--sparsity", Double.toString(sparsity),
                "--router-steps", "300", "--router-lr", "5e-3", "--lora-steps", "200", "--lora-lr", "2e-3",
                "--device", "cpu", "--out", out.toString()));
        if (resume) args.add("--resume");
        System.err.println("demo: skipgpt " + String.join(" ", args));
        if (System.getenv("OPENBLAS_NUM_THREADS") == null) CpuBackend.setBlasThreads(1);
        return Main.run(args.toArray(String[]::new));
    }
}
