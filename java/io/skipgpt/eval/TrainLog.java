package io.skipgpt.eval;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A training log ({@code train.jsonl} of train-routers) as series for plotting: every numeric field of the step
 * lines (those with a "loss") and of the evaluation lines (those with an "eval_ppl"), each against "step". A torn
 * last line — a run still writing — is left out; any other bad line is an error.
 */
public final class TrainLog {
    /** One field's values against steps. */
    public record Series(String name, double[] steps, double[] values) {}

    private final Map<String, List<double[]>> fields = new LinkedHashMap<>();

    public static TrainLog read(Path file) throws IOException {
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        TrainLog log = new TrainLog();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            if (line.isBlank()) continue;
            JsonObject o;
            try {
                o = JsonParser.parseString(line).getAsJsonObject();
            } catch (JsonParseException | IllegalStateException e) {
                if (i == lines.size() - 1) break;
                throw new IOException(file + ":" + (i + 1) + ": not a JSON object");
            }
            if (!o.has("step") || !(o.has("loss") || o.has("eval_ppl"))) continue;
            double step = o.get("step").getAsDouble();
            for (Map.Entry<String, JsonElement> e : o.entrySet()) {
                if (e.getKey().equals("step") || !e.getValue().isJsonPrimitive()
                        || !e.getValue().getAsJsonPrimitive().isNumber()) {
                    continue;
                }
                log.fields.computeIfAbsent(e.getKey(), k -> new ArrayList<>()).add(new double[] {step, e.getValue().getAsDouble()});
            }
        }
        if (log.fields.isEmpty()) throw new IOException(file + ": no training steps in this log");
        return log;
    }

    /** The series of a field, or null when the log has none. */
    public Series series(String name) {
        List<double[]> points = fields.get(name);
        if (points == null) return null;
        double[] steps = new double[points.size()], values = new double[points.size()];
        for (int i = 0; i < steps.length; i++) {
            steps[i] = points.get(i)[0];
            values[i] = points.get(i)[1];
        }
        return new Series(name, steps, values);
    }
}
