package io.skipgpt.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The Jinja subset on templates written in the styles of the common chat formats (LLaMA-2 [INST], ChatML,
 * LLaMA-3 headers), expected outputs worked out by hand with Hugging Face's settings (trim_blocks,
 * lstrip_blocks), and on the expression details those templates lean on.
 */
class JinjaTest {
    static final String INST = "{% if messages[0]['role'] == 'system' %}{% set rest = messages[1:] %}"
            + "{% set system = messages[0]['content'] %}{% else %}{% set rest = messages %}{% set system = false %}"
            + "{% endif %}{% for message in rest %}"
            + "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
            + "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
            + "{% if loop.index0 == 0 and system != false %}"
            + "{% set content = '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' + message['content'] %}"
            + "{% else %}{% set content = message['content'] %}{% endif %}"
            + "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
            + "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}"
            + "{% endfor %}";

    static final String CHATML = """
            {% for message in messages %}
            {% if loop.first and message.role != 'system' %}
            <|im_start|>system
            You are a helpful assistant.<|im_end|>
            {% endif %}
            <|im_start|>{{ message.role }}
            {{ message.content }}<|im_end|>
            {% endfor %}
            {% if add_generation_prompt %}
            <|im_start|>assistant
            {% endif %}
            """;

    static final String HEADERS = """
            {{- bos_token }}
            {%- set ns = namespace(system='') %}
            {%- for m in messages if m.role == 'system' %}
                {%- set ns.system = ns.system ~ m.content | trim %}
            {%- endfor %}
            {%- if ns.system %}
            {{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + ns.system + '<|eot_id|>' }}
            {%- endif %}
            {%- for message in messages %}
                {%- if message['role'] != 'system' %}
            {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
                {%- endif %}
            {%- endfor %}
            {%- if add_generation_prompt %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
            {%- endif %}
            """;

    @Test
    void instStyle() {
        String out = chat(INST, "system", "Be kind.", "user", " Hi ", "assistant", "Hello!", "user", "Bye");
        // strip() trims the whole content, so the user's leading space survives behind the system block
        assertEquals("<s>[INST] <<SYS>>\nBe kind.\n<</SYS>>\n\n Hi [/INST] Hello! </s><s>[INST] Bye [/INST]", out);
        Jinja.TemplateException e = assertThrows(Jinja.TemplateException.class,
                () -> chat(INST, "user", "a", "user", "b"));
        assertTrue(e.getMessage().contains("must alternate"), e.getMessage());
    }

    @Test
    void chatMlWithTrimAndLstripBlocks() {
        assertEquals("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                + "<|im_start|>assistant\n", chat(CHATML, "user", "Hi"));
        assertEquals("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n",
                chat(CHATML, "system", "S", "user", "U"));
    }

    @Test
    void headersWithNamespaceAndWhitespaceControl() {
        assertEquals("<s><|start_header_id|>system<|end_header_id|>\n\nBe nice.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n", chat(HEADERS, "system", " Be nice.", "user", " Hi "));
        assertEquals("<s><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n", chat(HEADERS, "user", "Hi"));
    }

    @Test
    void expressions() {
        Map<String, Object> v = new LinkedHashMap<>();
        v.put("xs", new ArrayList<>(List.of(1L, 2L, 3L, 4L)));
        v.put("s", "  Hello World  ");
        v.put("d", new LinkedHashMap<>(Map.of("k", "v")));
        assertEquals("[4, 3, 2, 1]|[2, 3]|4|1", render("{{ xs[::-1] }}|{{ xs[1:3] }}|{{ xs[-1] }}|{{ xs | first }}", v));
        assertEquals("True False True False", render("{{ 2 in xs }} {{ 9 in xs }} {{ 'k' in d }} {{ 'Hell' not in s }}", v));
        assertEquals("hello world|HELLO WORLD|Hello world|3", render("{{ s.strip().lower() }}|{{ s | trim | upper }}|"
                + "{{ s.strip() | capitalize }}|{{ s.split() | length + 1 }}", v));
        assertEquals("yes|no|None|none", render("{{ 'yes' if d.k == 'v' else 'no' }}|{{ 'yes' if d.x is defined else 'no' }}|"
                + "{{ none if true }}|{{ 'x' if false }}{{ 'none' if d.x is not defined }}", v));
        assertEquals("7 1 2 3.5 x1 2.0", render("{{ 3 + 4 }} {{ 7 % 3 }} {{ 7 // 3 }} {{ 7 / 2 }} {{ 'x' ~ 1 }} {{ 1.5 + 0.5 }}", v));
        assertEquals("1,2,3|a-b", render("{{ xs[:3] | join(',') }}|{{ ['a', 'b'] | join('-') }}", v));
        assertEquals("{\"a\": [1, \"é\\n\"], \"b\": null, \"c\": true}",
                render("{{ {'a': [1, 'é\\n'], 'b': none, 'c': true} | tojson }}", v));
        assertEquals("{\n  \"k\": \"v\"\n}", render("{{ d | tojson(indent=2) }}", v));
        assertEquals("k=v;", render("{% for key, value in d.items() %}{{ key }}={{ value }};{% endfor %}", v));
    }

    @Test
    void loopsAndScopes() {
        Map<String, Object> v = new LinkedHashMap<>();
        v.put("xs", List.of(1L, 2L, 3L, 4L, 5L));
        assertEquals("1,2,3", render("{% for x in xs %}{% if x == 4 %}{% break %}{% endif %}"
                + "{{ x }}{% if not loop.last and x < 3 %},{% endif %}{% endfor %}", v));
        assertEquals("135", render("{% for x in xs %}{% if x is even %}{% continue %}{% endif %}{{ x }}{% endfor %}", v));
        assertEquals("empty", render("{% for x in [] %}{{ x }}{% else %}empty{% endfor %}", v));
        assertEquals("0:1/2 1:3/2", render("{% for x in xs if x is odd and x < 4 %}{{ loop.index0 }}:{{ x }}/{{ loop.length }}"
                + "{% if not loop.last %} {% endif %}{% endfor %}", v));
        // A set inside a loop stays there; a namespace carries values out.
        assertEquals("0 15", render("{% set total = 0 %}{% set ns = namespace(total=0) %}{% for x in xs %}"
                + "{% set total = total + x %}{% set ns.total = ns.total + x %}{% endfor %}{{ total }} {{ ns.total }}", v));
        assertEquals("2", render("{{ [{'role': 'user'}, {'role': 'bot'}, {'role': 'user'}] | selectattr('role', 'equalto', "
                + "'user') | list | length }}", v));
        assertEquals("5", render("{{ range(5) | length }}", v));
    }

    @Test
    void whitespaceControl() {
        Map<String, Object> v = Map.of("x", "X");
        assertEquals("a X b", render("a {{ x }} b", v));
        assertEquals("aX b", render("a {{- x }} b", v));
        assertEquals("a Xb", render("a {{ x -}}\n b", v));
        assertEquals("line\nX\n", render("line\n    {% if x %}\nX\n    {% endif %}\n", v)); // lstrip + trim blocks
        assertEquals("ab", render("a{# a comment #}b", v));
        assertEquals("a   X", render("a   {%+ if x %}X{% endif %}", v));
    }

    @Test
    void errorsSayWhat() {
        assertMessage("{% macro m() %}{% endmacro %}", "macro");
        assertMessage("{{ x | wordwrap }}", "wordwrap");
        assertMessage("{% if x %}never closed", "endif");
        assertMessage("{{ x ", "never closed");
        assertMessage("{% endfor %}", "endfor");
        assertMessage("{{ 'a' + }}", "expected a value");
        Jinja.TemplateException e = assertThrows(Jinja.TemplateException.class,
                () -> Jinja.parse("{{ missing.attr }}").render(Map.of()));
        assertTrue(e.getMessage().contains("'missing' is undefined"), e.getMessage());
        assertEquals("", Jinja.parse("{{ missing }}").render(Map.of()), "an undefined value prints as nothing");
        e = assertThrows(Jinja.TemplateException.class, () -> Jinja.parse("{{ 'a'.zfill(3) }}").render(Map.of()));
        assertTrue(e.getMessage().contains("zfill"), e.getMessage());
    }

    @Test
    void strftimeDirectives() {
        ZonedDateTime t = ZonedDateTime.of(2024, 7, 6, 9, 5, 0, 0, ZoneOffset.UTC);
        assertEquals("06 Jul 2024, Saturday 09:05 %", Jinja.strftime("%d %b %Y, %A %H:%M %%", t));
        assertTrue(Jinja.parse("{{ strftime_now('%Y') }}").render(Map.of()).matches("\\d{4}"));
    }

    private static void assertMessage(String template, String part) {
        Jinja.TemplateException e = assertThrows(Jinja.TemplateException.class, () -> Jinja.parse(template));
        assertTrue(e.getMessage().contains(part), "'" + e.getMessage() + "' should mention " + part);
    }

    private static String render(String template, Map<String, Object> vars) {
        return Jinja.parse(template).render(vars);
    }

    // role, content, role, content, ... rendered with a generation prompt and LLaMA-2 special tokens.
    static String chat(String template, String... roleContent) {
        List<Object> messages = new ArrayList<>();
        for (int i = 0; i < roleContent.length; i += 2) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("role", roleContent[i]);
            m.put("content", roleContent[i + 1]);
            messages.add(m);
        }
        Map<String, Object> vars = new LinkedHashMap<>();
        vars.put("messages", messages);
        vars.put("bos_token", "<s>");
        vars.put("eos_token", "</s>");
        vars.put("add_generation_prompt", true);
        return Jinja.parse(template).render(vars);
    }
}
