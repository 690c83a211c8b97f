package io.skipgpt.cli;

import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.ModelShapes;
import io.skipgpt.model.RandomWeights;
import java.nio.file.Path;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Option;

/**
 * Which model bench and serve run: a model file, or random weights of a real architecture with fewer layers, so
 * that speed and load tests of a large model need neither its download nor its memory.
 */
final class ModelOrShapeOptions {
    static final class Source {
        @Option(names = {"-m", "--model"}, paramLabel = "PATH",
                description = "A GGUF file, a llama2.c checkpoint (.bin) or a Hugging Face directory.")
        Path model;

        @Option(names = "--shape", paramLabel = "NAME", description = "Instead of a model: random weights of this "
                + "architecture (llama2-7b, llama3-8b or tiny) with --layers layers, for speed and load tests.")
        String shape;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    @Option(names = "--layers", defaultValue = "2", paramLabel = "N",
            description = "Decoder layers of a --shape model (default: ${DEFAULT-VALUE}; 0 = all).")
    int layers;

    /** The model file, or null with --shape. */
    Path model() {
        return source.model;
    }

    /** The --shape name, or null with --model. */
    String shape() {
        return source.shape;
    }

    /** The --shape architecture with --layers decoder layers. */
    LlamaConfig shapeConfig() {
        return ModelShapes.named(source.shape, layers);
    }

    /** Seeded random weights of the --shape model: gigabytes for a large shape, so check the settings first. */
    LlamaWeights randomWeights(LlamaConfig config) {
        System.err.printf("building a random %s model with %d layers (%,d parameters)...%n", source.shape,
                config.nLayers(), config.parameterCount());
        return RandomWeights.create(config, 1234);
    }
}
