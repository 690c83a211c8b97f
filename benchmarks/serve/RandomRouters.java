import io.skipgpt.routing.RouterFile;
import io.skipgpt.routing.Routers;
import java.nio.file.Path;

/**
 * Writes untrained routers (Kaiming-uniform weights, zero bias: about half of all modules skipped, decided per
 * token) for a model shape, to load-test routed serving on models that have no trained routers.
 * Usage: java -cp "target/skipgpt.jar:target/lib/*" benchmarks/serve/RandomRouters.java OUT LAYERS DIM SEED
 */
public class RandomRouters {
    public static void main(String[] args) throws Exception {
        try (Routers r = Routers.initialise(Integer.parseInt(args[1]), Integer.parseInt(args[2]), Long.parseLong(args[3]))) {
            RouterFile.write(Path.of(args[0]), r);
        }
    }
}
