package io.skipgpt.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.skipgpt.testing.SharedData;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import picocli.CommandLine;

/** The command line as a user meets it: help with examples, clear one-line errors, working commands. */
class CliTest {
    record Run(int code, String out, String err) {}

    static synchronized Run run(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int code = Main.run(args);
            return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"info", "generate", "eval", "convert", "bench"})
    void everyCommandHelpShowsAnExample(String command) {
        Run r = run(command, "--help");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("Example"), r.out());
        assertTrue(r.out().contains("skipgpt " + command), r.out());
    }

    /** Each description line of a command's annotation comes out whole: none is broken again by the help width. */
    @Test
    void helpKeepsTheDescriptionLinesWhole() {
        for (Map.Entry<String, CommandLine> e : new CommandLine(new Main()).getSubcommands().entrySet()) {
            if (e.getKey().equals("help")) continue;
            Run r = run(e.getKey(), "--help");
            assertEquals(0, r.code(), r.err());
            for (String line : e.getValue().getCommandSpec().usageMessage().description()) {
                assertTrue(line.length() <= Main.USAGE_WIDTH, e.getKey() + ": description line too long: " + line);
                assertTrue(r.out().contains(line), e.getKey() + " --help breaks the line \"" + line + "\":\n" + r.out());
            }
        }
    }

    @Test
    void missingModelIsOneClearLine(@TempDir Path dir) {
        Path missing = dir.resolve("nope.gguf");
        Run r = run("info", "--model", missing.toString());
        assertNotEquals(0, r.code());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().startsWith("error: ") && r.err().contains(missing.toString()), r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace without --verbose: " + r.err());
    }

    @Test
    void verboseAddsTheStackTrace(@TempDir Path dir) {
        Run r = run("info", "--verbose", "--model", dir.resolve("nope.gguf").toString());
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("\tat "), r.err());
    }

    @Test
    void corruptModelNamesTheFile(@TempDir Path dir) throws Exception {
        Path bad = dir.resolve("bad.gguf");
        Files.write(bad, new byte[] {'G', 'G', 'U', 'F', 3, 0, 0, 0, 1});
        Run r = run("info", "--model", bad.toString());
        assertNotEquals(0, r.code());
        assertTrue(r.err().startsWith("error: " + bad), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
    }

    @Test
    void badOptionValuesAreRejected() {
        Path model = SharedData.require("models/stories260K/stories260K.gguf");
        Run r = run("generate", "--model", model.toString(), "--temperature", "-1", "--device", "cpu");
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("temperature"), r.err());
        r = run("generate", "--model", model.toString(), "--device", "tpu");
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("tpu"), r.err());
        r = run("generate", "--model", model.toString(), "--device", "cpu", "--precision", "fp16");
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("unknown precision 'fp16': expected fp32, tf32 or bf16"), r.err());
        r = run("generate", "--model", model.toString(), "--device", "cuda");
        assertNotEquals(0, r.code());
        assertTrue(r.err().startsWith("error: --device cuda: ") && r.err().contains("--device cpu"), r.err());
    }

    @Test
    void generateStreamsTheGoldenStory() {
        Path model = SharedData.require("models/stories260K/stories260K.gguf");
        Run r = run("generate", "--model", model.toString(), "--max-tokens", "20", "--device", "cpu");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("Once upon a time, there was a little girl named Lily."), r.out());
        assertTrue(r.err().contains("tok/s"), r.err());
        Run echoed = run("generate", "--model", model.toString(), "--prompt", "Once upon a time", "--echo",
                "--max-tokens", "5", "--device", "cpu");
        assertTrue(echoed.out().startsWith("Once upon a time, there was"), echoed.out());
    }

    @Test
    void evalJsonReportsPerplexity() {
        Path model = SharedData.require("models/stories260K/stories260K.bin");
        Path text = SharedData.require("text/tinystories_valid_head.txt");
        Run r = run("eval", "--model", model.toString(), "--ppl", text.toString(), "--ctx", "512", "--json", "--device", "cpu");
        assertEquals(0, r.code(), r.err());
        JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
        assertEquals(3.4071, o.get("ppl").getAsDouble(), 2e-4);
        assertEquals(14829, o.get("tokens").getAsLong());
        assertTrue(o.has("nll"));
    }

    @Test
    void infoDescribesTheModel() {
        Path model = SharedData.require("models/stories260K/stories260K.gguf");
        Run r = run("info", "--model", model.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("dim 64, hidden 172, layers 5, heads 8, kv heads 4"), r.out());
        assertTrue(r.out().contains("260,032"), r.out());
    }

    @Test
    void benchOnATinyShapePrintsBothPhases() {
        Run r = run("bench", "--shape", "tiny", "--layers", "1", "--pp", "16", "--tg", "4", "--reps", "1",
                "--warmup", "0", "--device", "cpu", "--json");
        assertEquals(0, r.code(), r.err());
        JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
        assertEquals("pp16", o.getAsJsonArray("results").get(0).getAsJsonObject().get("test").getAsString());
        assertEquals("tg4", o.getAsJsonArray("results").get(1).getAsJsonObject().get("test").getAsString());
        assertTrue(o.getAsJsonArray("results").get(1).getAsJsonObject().get("tokens_per_s").getAsDouble() > 0);
    }

    /** bench and serve take their model from the same options: the same checks, the same errors. */
    @ParameterizedTest
    @ValueSource(strings = {"bench", "serve"})
    void benchAndServeCheckModelOrShapeAlike(String command) {
        Run neither = run(command, "--device", "cpu");
        assertNotEquals(0, neither.code());
        assertTrue(neither.err().contains("Missing required argument") && neither.err().contains("--shape"), neither.err());
        Run both = run(command, "--model", "m.gguf", "--shape", "tiny", "--device", "cpu");
        assertNotEquals(0, both.code());
        assertTrue(both.err().contains("--model=PATH, --shape=NAME are mutually exclusive"), both.err());
        // serve's --shape model takes its vocabulary from --tokenizer
        String tokenizer = SharedData.require("models/stories260K/tok512.bin").toString();
        List<String> shape = command.equals("serve") ? List.of(command, "--tokenizer", tokenizer, "--shape")
                : List.of(command, "--shape");
        Run unknown = run(plus(shape, "gpt5"));
        assertNotEquals(0, unknown.code());
        assertEquals("error: unknown shape 'gpt5'; known: llama2-7b, llama3-8b, tiny", unknown.err().strip());
        Run negative = run(plus(shape, "tiny", "--layers", "-1"));
        assertNotEquals(0, negative.code());
        assertEquals("error: layers must be >= 0, got -1", negative.err().strip());
    }

    private static String[] plus(List<String> head, String... tail) {
        List<String> all = new ArrayList<>(head);
        all.addAll(List.of(tail));
        return all.toArray(String[]::new);
    }

    @Test
    void serveBuildsAShapeModelOnlyWithATokenizer() {
        Run r = run("serve", "--shape", "tiny", "--device", "cpu");
        assertNotEquals(0, r.code());
        assertEquals("error: --shape needs --tokenizer", r.err().strip());
    }

    @Test
    void evalWithStaticSkipReportsRoutingFigures() {
        Path model = SharedData.require("models/stories260K/stories260K.gguf");
        Path text = SharedData.require("text/tinystories_valid_head.txt");
        Run r = run("eval", "--model", model.toString(), "--ppl", text.toString(), "--ctx", "512", "--json",
                "--device", "cpu", "--skip", "attn:2,mlp:4");
        assertEquals(0, r.code(), r.err());
        JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
        assertEquals(0.2, o.get("module_sparsity").getAsDouble(), 1e-12);
        assertEquals(0.0, o.getAsJsonArray("attn_keep").get(2).getAsDouble());
        assertEquals(1.0, o.getAsJsonArray("attn_keep").get(1).getAsDouble());
        assertEquals(0.0, o.getAsJsonArray("mlp_keep").get(4).getAsDouble());
        assertTrue(o.get("flop_saving").getAsDouble() > 0.1 && o.get("flop_saving").getAsDouble() < 0.2);
        assertTrue(o.get("ppl").getAsDouble() > 3.4071, "skipping modules should cost quality");
    }

    @Test
    void trainRoutersThenEvalAndGenerateWithThem(@TempDir Path dir) {
        Path model = SharedData.require("models/stories260K/stories260K.gguf");
        Path text = SharedData.require("text/tinystories_valid_head.txt");
        Path out = dir.resolve("run");
        Run t = run("train-routers", "--model", model.toString(), "--data", text.toString(), "--sparsity", "0.25",
                "--steps", "3", "--batch", "2", "--seq-len", "64", "--eval-every", "0", "--out", out.toString(),
                "--device", "cpu");
        assertEquals(0, t.code(), t.err());
        assertTrue(t.err().contains("step 3/3") && t.err().contains("tau 1.00"), t.err());
        assertEquals(3, t.err().lines().filter(l -> l.startsWith("step ")).count(), t.err());
        assertTrue(Files.exists(out.resolve("train.jsonl")));
        Path routers = out.resolve("routers.safetensors");
        Run e = run("eval", "--model", model.toString(), "--ppl", text.toString(), "--json", "--device", "cpu",
                "--routers", routers.toString());
        assertEquals(0, e.code(), e.err());
        JsonObject o = JsonParser.parseString(e.out()).getAsJsonObject();
        assertEquals(5, o.getAsJsonArray("attn_keep").size());
        assertTrue(o.has("param_sparsity") && o.has("flop_saving") && o.has("module_sparsity"));
        Run g = run("generate", "--model", model.toString(), "--max-tokens", "8", "--device", "cpu",
                "--routers", routers.toString(), "--routing", "sample", "--seed", "1");
        assertEquals(0, g.code(), g.err());
        assertTrue(g.err().contains("[routing] module sparsity"), g.err());
        Run bad = run("eval", "--model", model.toString(), "--ppl", text.toString(), "--device", "cpu",
                "--routers", routers.toString(), "--skip", "attn:1");
        assertNotEquals(0, bad.code());
        assertTrue(bad.err().contains("either --routers or --skip"), bad.err());
    }
}
