package io.skipgpt.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonParser;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.routing.Routing;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tokenizer.Tokenizer;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Zero-shot scoring against a fake bigram model whose log-likelihoods can be worked out by hand: after each token
 * one "favoured" next token has probability 0.6 and each of the other eight 0.05 (the logits are these
 * log-probabilities, so log-softmax returns them unchanged).
 */
class ZeroShotTest {
    // ids: 0 <unk>, 1 BOS, 2 EOS, 3 ' ', 4 a, 5 b, 6 c, 7 '.', 8 " b" (a merged piece, like SentencePiece's "▁b")
    static final String CHARS = " abc.";
    static final int VOCAB = 9;
    static final double FAV = Math.log(0.6), OTHER = Math.log(0.05);
    // favoured next token: BOS -> a, ' ' -> a, a -> b, b -> c, c -> '.', '.' -> ' ', " b" -> c
    static final int[] FAVOURED = {4, 4, 4, 4, 5, 6, 7, 3, 6};

    static final Tokenizer TOKENIZER = new Tokenizer() {
        public int[] encode(String text) {
            int[] out = new int[text.length()];
            int n = 0;
            for (int i = 0; i < text.length(); i++) {
                if (text.startsWith(" b", i)) {
                    out[n++] = 8;
                    i++;
                } else {
                    int c = CHARS.indexOf(text.charAt(i));
                    if (c < 0) throw new IllegalArgumentException("no token for '" + text.charAt(i) + "'");
                    out[n++] = 3 + c;
                }
            }
            return java.util.Arrays.copyOf(out, n);
        }

        public String decode(int[] ids) {
            return "";
        }

        public int bos() {
            return 1;
        }

        public int eos() {
            return 2;
        }

        public int vocabSize() {
            return VOCAB;
        }

        public String describe() {
            return "fake";
        }
    };

    static final class Bigram implements ZeroShot.LanguageModel {
        final int window;
        int[] lastInput;

        Bigram(int window) {
            this.window = window;
        }

        public int vocabSize() {
            return VOCAB;
        }

        public int maxTokens() {
            return window;
        }

        public float[] lastLogits(int[] tokens, int rows) {
            lastInput = tokens.clone();
            float[] out = new float[rows * VOCAB];
            for (int r = 0; r < rows; r++) {
                int prev = tokens[tokens.length - rows + r];
                for (int v = 0; v < VOCAB; v++) out[r * VOCAB + v] = (float) (v == FAVOURED[prev] ? FAV : OTHER);
            }
            return out;
        }
    }

    static ZeroShot.Request req(String context, String continuation) {
        return new ZeroShot.Request(context, continuation);
    }

    @Test
    void logLikelihoodIsTheSumOverContinuationTokens() {
        ZeroShot zs = new ZeroShot(new Bigram(64), TOKENIZER);
        // BOS a b | c . : b->c and c->. are both favoured
        ZeroShot.LogLikelihood r = zs.logLikelihood(req("ab", "c."));
        assertEquals(2 * FAV, r.value(), 1e-6);
        assertTrue(r.greedy());
        assertEquals(2, r.tokens());
        // b->a is not favoured, a->a neither
        r = zs.logLikelihood(req("ab", "aa"));
        assertEquals(2 * OTHER, r.value(), 1e-6);
        assertFalse(r.greedy());
        // the first continuation token is predicted from the last context token, and an empty context from BOS
        assertEquals(FAV, zs.logLikelihood(req("", "a")).value(), 1e-6);
        assertEquals(OTHER, zs.logLikelihood(req("", "b")).value(), 1e-6);
    }

    @Test
    void trailingSpaceOfTheContextMovesIntoTheContinuation() {
        ZeroShot zs = new ZeroShot(new Bigram(64), TOKENIZER);
        // "a " + "bc" is scored as "a" + " bc": the continuation is the merged " b" then c
        ZeroShot.Request r = req("a ", "bc");
        int[][] split = zs.encode(r);
        assertArrayEquals(new int[] {4}, split[0]);
        assertArrayEquals(new int[] {8, 6}, split[1]);
        // a -> " b" is not favoured, " b" -> c is
        assertEquals(OTHER + FAV, zs.logLikelihood(r).value(), 1e-6);
    }

    @Test
    void longSequencesKeepTheirLastTokens() {
        Bigram model = new Bigram(3);
        ZeroShot zs = new ZeroShot(model, TOKENIZER);
        // BOS a b c . | a: the input is everything but the last token, cut to its last 3 tokens
        assertEquals(OTHER, zs.logLikelihood(req("abc.", "a")).value(), 1e-6);
        assertArrayEquals(new int[] {5, 6, 7}, model.lastInput);
        // BOS a | b c . a b, longer than the window: [BOS a b] scores b c, then [c . a] scores . a b
        ZeroShot.LogLikelihood r = zs.logLikelihood(req("a", "bc.ab"));
        assertEquals(4 * FAV + OTHER, r.value(), 1e-6);
        assertEquals(5, r.tokens());
        assertArrayEquals(new int[] {1, 4, 5}, model.lastInput);
    }

    @Test
    void accPicksTheLikeliestChoiceAndAccNormTheLikeliestPerCharacter() {
        ZeroShot zs = new ZeroShot(new Bigram(64), TOKENIZER);
        // "a": one unlikely token (-3.00 in all, per char); "c.aa": b->c, c->. favoured, .->a, a->a not:
        // -7.01 in all but -1.75 per character.
        ZeroShotTasks.Item item = new ZeroShotTasks.Item(List.of(req("ab", "a"), req("ab", "c.aa")), 1);
        ZeroShot.TaskResult r = zs.evaluate(ZeroShotTasks.Task.ARC_EASY, List.of(item), null);
        assertEquals(0.0, r.acc());
        assertEquals(1.0, r.accNorm());
        ZeroShotTasks.Item other = new ZeroShotTasks.Item(List.of(req("ab", "a"), req("ab", "c.aa")), 0);
        r = zs.evaluate(ZeroShotTasks.Task.ARC_EASY, List.of(item, other), null);
        assertEquals(0.5, r.acc());
        assertEquals(0.5, r.accNorm());
        assertEquals(Math.sqrt(0.25 / 1), r.accStderr(), 1e-12);
        assertTrue(Double.isNaN(r.ppl()));
    }

    @Test
    void partialScoringComparesTheSharedContinuationAfterEachContext() {
        ZeroShot zs = new ZeroShot(new Bigram(64), TOKENIZER);
        // the continuation "bc" is likelier after "a" (a->b favoured) than after "c" (c->b not)
        ZeroShotTasks.Item item = new ZeroShotTasks.Item(List.of(req("c", "bc"), req("a", "bc")), 1);
        int[] requests = {0};
        ZeroShot.TaskResult r = zs.evaluate(ZeroShotTasks.Task.WINOGRANDE, List.of(item), n -> requests[0] = n);
        assertEquals(1.0, r.acc());
        assertTrue(Double.isNaN(r.accNorm()), "the harness reports acc only for WinoGrande");
        assertEquals(2, requests[0]);
    }

    @Test
    void lastWordIsRightOnlyWhenEveryTokenIsTheArgmax() {
        ZeroShot zs = new ZeroShot(new Bigram(64), TOKENIZER);
        List<ZeroShotTasks.Item> items = List.of(
                new ZeroShotTasks.Item(List.of(req("a", "bc")), 0), // a->b, b->c: greedy
                new ZeroShotTasks.Item(List.of(req("a", "bb")), 0)); // b->b is not
        ZeroShot.TaskResult r = zs.evaluate(ZeroShotTasks.Task.LAMBADA, items, null);
        assertEquals(0.5, r.acc());
        assertEquals(Math.exp(-((2 * FAV) + (FAV + OTHER)) / 2), r.ppl(), 1e-5);
        assertTrue(Double.isNaN(r.accNorm()));
    }

    @Test
    void itemsAreReadFromTheLlmFoundryFields() {
        ZeroShotTasks.Item mc = ZeroShotTasks.item(ZeroShotTasks.Task.ARC_EASY, JsonParser.parseString(
                "{\"query\": \"Question: Why?\", \"choices\": [\"x\", \"y\"], \"gold\": 1}").getAsJsonObject());
        assertEquals(List.of(req("Question: Why?\nAnswer: ", "x"), req("Question: Why?\nAnswer: ", "y")), mc.requests());
        assertEquals(1, mc.gold());
        ZeroShotTasks.Item copa = ZeroShotTasks.item(ZeroShotTasks.Task.COPA, JsonParser.parseString(
                "{\"query\": \"It rained, therefore\", \"choices\": [\"x.\", \"y.\"], \"gold\": 0}").getAsJsonObject());
        assertEquals(req("It rained, therefore ", "x."), copa.requests().get(0));
        ZeroShotTasks.Item wino = ZeroShotTasks.item(ZeroShotTasks.Task.WINOGRANDE, JsonParser.parseString(
                "{\"context_options\": [\"A so A\", \"A so B\"], \"continuation\": \"won.\", \"gold\": 1}").getAsJsonObject());
        assertEquals(List.of(req("A so A ", "won."), req("A so B ", "won.")), wino.requests());
        ZeroShotTasks.Item lambada = ZeroShotTasks.item(ZeroShotTasks.Task.LAMBADA, JsonParser.parseString(
                "{\"context\": \"he said\", \"continuation\": \"hello\"}").getAsJsonObject());
        assertEquals(List.of(req("he said ", "hello")), lambada.requests());
        assertThrows(IllegalArgumentException.class, () -> ZeroShotTasks.item(ZeroShotTasks.Task.PIQA,
                JsonParser.parseString("{\"query\": \"q\", \"choices\": [\"x\"], \"gold\": 1}").getAsJsonObject()));
        assertEquals(ZeroShotTasks.Task.OPENBOOKQA, ZeroShotTasks.Task.named("openbook_qa"));
        assertEquals(8, ZeroShotTasks.parse("all").size());
        assertThrows(IllegalArgumentException.class, () -> ZeroShotTasks.parse("arc_easy,hellaswag"));
    }

    @Test
    void aLlamaScoresAWholeTextAsPerplexityDoes() {
        LlamaConfig config = StaticSkipSearchTest.CONFIG;
        String text = "the log-likelihood of a text after BOS is minus its summed loss";
        try (LlamaWeights w = RandomWeights.create(config, 3); Backend b = new CpuBackend();
                LlamaModel model = new LlamaModel(config, w, b);
                ModelLogits logits = new ModelLogits(model, Routing.DENSE, config.contextLength())) {
            ZeroShot zs = new ZeroShot(logits, StaticSkipSearchTest.CHARS);
            double ll = zs.logLikelihood(req("", text)).value();
            Perplexity.Result ppl = new Perplexity(model, StaticSkipSearchTest.CHARS, config.contextLength()).score(text, null);
            assertEquals(-ppl.nll(), ll, 1e-3);
        }
    }
}
