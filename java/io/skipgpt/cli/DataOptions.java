package io.skipgpt.cli;

import io.skipgpt.tokenizer.Tokenizer;
import io.skipgpt.train.TokenDataset;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import picocli.CommandLine.Option;

/** The training data options the training commands share: files, how they are cut, and batch size. */
final class DataOptions {
    @Option(names = "--data", required = true, arity = "1..*", paramLabel = "FILE",
            description = "Training text files (documents split on <|endoftext|> lines).")
    List<Path> files;

    @Option(names = "--seq-len", defaultValue = "256", paramLabel = "L", description = "Tokens per sequence (default: ${DEFAULT-VALUE}).")
    int seqLen;

    @Option(names = "--batch", defaultValue = "8", paramLabel = "B", description = "Sequences per micro-batch (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--pack", description = "Pack documents into windows of --seq-len instead of one document per sequence.")
    boolean pack;

    @Option(names = "--holdout", defaultValue = "0.05", paramLabel = "F", description = "Held-out fraction for evaluation (default: ${DEFAULT-VALUE}).")
    double holdout;

    /** Tokenises the files into a dataset whose order and hold-out split follow {@code seed}; says so on stderr. */
    TokenDataset load(Tokenizer tokenizer, long seed) throws IOException {
        TokenDataset.Options o = new TokenDataset.Options(pack ? TokenDataset.Mode.PACKED : TokenDataset.Mode.DOCUMENTS,
                seqLen, holdout, seed);
        System.err.printf("tokenising %d file(s)...%n", files.size());
        TokenDataset dataset = TokenDataset.load(files, tokenizer, o);
        System.err.printf("%s%n", dataset);
        return dataset;
    }
}
