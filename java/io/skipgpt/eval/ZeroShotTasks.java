package io.skipgpt.eval;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The zero-shot tasks and their data: MosaicML llm-foundry's local eval files ({@code bench/llm-foundry/*.jsonl}),
 * with the continuation delimiters llm-foundry's task list uses ("\nAnswer: " after ARC, BoolQ and PIQA
 * questions, a space elsewhere).
 */
public final class ZeroShotTasks {
    private ZeroShotTasks() {}

    public enum Kind { MULTIPLE_CHOICE, PARTIAL, LAST_WORD }

    public enum Task {
        ARC_EASY("arc_easy", "arc_easy.jsonl", Kind.MULTIPLE_CHOICE, "\nAnswer: "),
        ARC_CHALLENGE("arc_challenge", "arc_challenge.jsonl", Kind.MULTIPLE_CHOICE, "\nAnswer: "),
        BOOLQ("boolq", "boolq.jsonl", Kind.MULTIPLE_CHOICE, "\nAnswer: "),
        OPENBOOKQA("openbookqa", "openbook_qa.jsonl", Kind.MULTIPLE_CHOICE, " "),
        PIQA("piqa", "piqa.jsonl", Kind.MULTIPLE_CHOICE, "\nAnswer: "),
        WINOGRANDE("winogrande", "winogrande.jsonl", Kind.PARTIAL, " "),
        COPA("copa", "copa.jsonl", Kind.MULTIPLE_CHOICE, " "),
        LAMBADA("lambada", "lambada_openai.jsonl", Kind.LAST_WORD, " ");

        private final String label;
        private final String file;
        private final Kind kind;
        private final String delimiter;

        Task(String label, String file, Kind kind, String delimiter) {
            this.label = label;
            this.file = file;
            this.kind = kind;
            this.delimiter = delimiter;
        }

        public String label() {
            return label;
        }

        public String file() {
            return file;
        }

        public Kind kind() {
            return kind;
        }

        /** A task by its label or its file's name without ".jsonl" (openbook_qa, lambada_openai). */
        public static Task named(String name) {
            for (Task t : values()) {
                if (t.label.equals(name) || t.file.equals(name + ".jsonl")) return t;
            }
            List<String> labels = new ArrayList<>();
            for (Task t : values()) labels.add(t.label);
            throw new IllegalArgumentException("unknown task '" + name + "'; known: " + String.join(",", labels));
        }
    }

    /** One item: its candidates as requests, and the index of the right one (0 for LAMBADA's single request). */
    public record Item(List<ZeroShot.Request> requests, int gold) {}

    /** Parses every task in a comma-separated list ("all" for every task). */
    public static List<Task> parse(String list) {
        List<Task> tasks = new ArrayList<>();
        for (String name : list.split(",")) {
            String s = name.strip();
            if (s.isEmpty()) continue;
            if (s.equals("all")) {
                tasks.addAll(List.of(Task.values()));
            } else {
                tasks.add(Task.named(s));
            }
        }
        if (tasks.isEmpty()) throw new IllegalArgumentException("--tasks names no task");
        return tasks;
    }

    /** The first {@code limit} items (all when limit <= 0) of a task's file in {@code dir}. */
    public static List<Item> load(Task task, Path dir, int limit) throws IOException {
        Path file = dir.resolve(task.file());
        List<Item> items = new ArrayList<>();
        try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String line;
            int lineNo = 0;
            while ((line = in.readLine()) != null && (limit <= 0 || items.size() < limit)) {
                lineNo++;
                if (line.isBlank()) continue;
                try {
                    items.add(item(task, JsonParser.parseString(line).getAsJsonObject()));
                } catch (JsonParseException | IllegalStateException | NullPointerException | UnsupportedOperationException e) {
                    throw new IOException(file + ":" + lineNo + ": not a " + task.label() + " item (" + e.getMessage() + ")");
                } catch (IllegalArgumentException e) {
                    throw new IOException(file + ":" + lineNo + ": " + e.getMessage());
                }
            }
        }
        return items;
    }

    static Item item(Task task, JsonObject o) {
        List<ZeroShot.Request> requests = new ArrayList<>();
        int gold = 0;
        switch (task.kind()) {
            case MULTIPLE_CHOICE -> {
                String context = o.get("query").getAsString() + task.delimiter;
                for (String choice : strings(o.getAsJsonArray("choices"))) requests.add(new ZeroShot.Request(context, choice));
                gold = o.get("gold").getAsInt();
            }
            case PARTIAL -> {
                String continuation = o.get("continuation").getAsString();
                for (String option : strings(o.getAsJsonArray("context_options"))) {
                    requests.add(new ZeroShot.Request(option + task.delimiter, continuation));
                }
                gold = o.get("gold").getAsInt();
            }
            case LAST_WORD -> requests.add(new ZeroShot.Request(o.get("context").getAsString() + task.delimiter,
                    o.get("continuation").getAsString()));
        }
        if (requests.isEmpty()) throw new IllegalArgumentException("no candidates");
        if (gold < 0 || gold >= requests.size()) {
            throw new IllegalArgumentException("gold " + gold + " outside the " + requests.size() + " candidates");
        }
        return new Item(List.copyOf(requests), gold);
    }

    private static List<String> strings(JsonArray a) {
        List<String> out = new ArrayList<>();
        for (JsonElement e : a) out.add(e.getAsString());
        return out;
    }
}
