package io.skipgpt.testing;

import io.skipgpt.io.LoadedModel;
import io.skipgpt.io.ModelLoader;
import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.lora.LoraConfig;
import io.skipgpt.lora.PeftDirectory;
import io.skipgpt.model.Projection;
import io.skipgpt.tensor.Tensor;
import java.nio.file.Path;
import java.util.SplittableRandom;

/** LoRA adapters for command-line tests. */
public final class TestAdapters {
    private TestAdapters() {}

    /**
     * Writes a PEFT directory for the model: the default targets with random, non-zero B (a freshly initialised
     * adapter has B = 0 and adds nothing, so it could not tell an applied adapter from a forgotten one).
     */
    public static void writeRandom(Path dir, Path model, long seed) throws Exception {
        try (LoadedModel m = ModelLoader.load(model, null);
             LoraAdapter lora = LoraAdapter.initialise(m.config(), LoraConfig.DEFAULT, seed)) {
            SplittableRandom random = new SplittableRandom(seed);
            for (Projection p : LoraConfig.DEFAULT.targets()) {
                for (int l = 0; l < m.config().nLayers(); l++) {
                    Tensor b = lora.b(l, p);
                    for (long i = 0; i < b.size(); i++) b.set(i, (float) (random.nextDouble() - 0.5) * 0.2f);
                }
            }
            PeftDirectory.write(dir, lora, model.toString());
        }
    }
}
