package io.skipgpt.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

class PerplexityDocumentsTest {
    @Test
    void separatorLinesSplitAndStripDocuments() {
        String text = "  first story.\nline two \n<|endoftext|>\n\nsecond\n<|endoftext|>\n<|endoftext|>\n third \n";
        assertEquals(List.of("first story.\nline two", "second", "third"), Perplexity.documents(text));
    }

    @Test
    void textWithoutSeparatorIsOneDocumentAsIs() {
        String text = "  one whole\ntext \n";
        assertEquals(List.of(text), Perplexity.documents(text));
    }

    @Test
    void separatorInsideALineDoesNotSplit() {
        assertEquals(1, Perplexity.documents("a <|endoftext|> b\nc").size());
    }
}
