package io.skipgpt.cli;

import io.skipgpt.io.ModelFormatException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.NoSuchFileException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** The {@code skipgpt} command line. Bad input ends in one clear line and a non-zero exit, never a stack trace. */
@Command(name = "skipgpt", mixinStandardHelpOptions = true, version = "skipgpt 0.1.0",
        description = "SkipGPT for the JVM: run LLaMA-family models, and make them cheaper by dynamic layer skipping.",
        subcommands = {InfoCommand.class, GenerateCommand.class, EvalCommand.class, ConvertCommand.class,
                BenchCommand.class, TrainRoutersCommand.class, StaticSkipCommand.class, TrainLoraCommand.class,
                MergeCommand.class, PruneCommand.class, DemoCommand.class, ServeCommand.class, ServeBenchCommand.class,
                ReportCommand.class,
                CommandLine.HelpCommand.class},
        footer = {"", "Example:",
                "  skipgpt generate --model ../shared/data/models/stories260K/stories260K.gguf \\",
                "      --prompt \"Once upon a time\" --max-tokens 100"})
public final class Main implements Runnable {
    @Option(names = "--verbose", scope = CommandLine.ScopeType.INHERIT,
            description = "Print stack traces of errors.")
    boolean verbose;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        // Model weights live in native memory: JavaCPP would otherwise cap it at the Java heap size (-Xmx).
        System.setProperty("org.bytedeco.javacpp.maxBytes", "0");
        System.setProperty("org.bytedeco.javacpp.maxPhysicalBytes", "0");
        System.exit(run(args));
    }

    /** Columns of --help: the description lines in the commands' annotations are broken to fit it. */
    static final int USAGE_WIDTH = 120;

    /** Runs the command line and returns its exit code (tests call this instead of main). */
    public static int run(String... args) {
        CommandLine cli = new CommandLine(new Main());
        // Descriptions are written as lines of up to USAGE_WIDTH columns; picocli's 80 would break each again.
        cli.setUsageHelpWidth(USAGE_WIDTH);
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            boolean verbose = parseResult.hasMatchedOption("--verbose")
                    || parseResult.subcommands().stream().anyMatch(p -> p.hasMatchedOption("--verbose"));
            commandLine.getErr().println("error: " + describe(e));
            if (verbose) e.printStackTrace(commandLine.getErr());
            return exitCode(e);
        });
        try {
            return cli.execute(args);
        } catch (OutOfMemoryError e) {
            System.err.println("error: out of memory: " + e.getMessage()
                    + " (a smaller model, fewer --layers, or a machine with more memory)");
            return 4;
        }
    }

    static String describe(Throwable e) {
        if (e instanceof UncheckedIOException u) e = u.getCause();
        if (e instanceof NoSuchFileException n) return n.getFile() + ": no such file";
        if (e instanceof IOException io) return io.getMessage() == null ? io.toString() : io.getMessage();
        if (e.getMessage() != null && (e instanceof ModelFormatException || e instanceof IllegalArgumentException
                || e instanceof IllegalStateException || e instanceof UnsupportedOperationException)) {
            return e.getMessage();
        }
        return e.toString();
    }

    private static int exitCode(Exception e) {
        return e instanceof ModelFormatException || e instanceof IOException || e instanceof UncheckedIOException
                ? 3 : 2;
    }
}
