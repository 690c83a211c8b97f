package io.skipgpt.serve;

import java.time.ZonedDateTime;
import java.time.format.TextStyle;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The part of Jinja that chat templates use, interpreted the way Hugging Face renders them (trim_blocks and
 * lstrip_blocks on, loop controls on):
 * <ul>
 *   <li>text, {@code {{ expr }}}, {@code {# comments #}}, whitespace control with {@code -};
 *   <li>{@code if / elif / else}, {@code for x in xs [if cond]} (with {@code loop.index0, index, first, last,
 *       length, revindex}; tuple targets; {@code else}), {@code break}, {@code continue}, {@code set} (also
 *       {@code set ns.attr}), {@code generation} blocks (rendered as their content);
 *   <li>literals (strings, numbers, booleans, none, lists, dicts), names, {@code .attr}, {@code [index]},
 *       slices, calls, {@code not and or}, comparisons, {@code in}, {@code + - * / // % ~}, {@code a if c else b};
 *   <li>filters {@code trim length count upper lower capitalize title string first last join default d replace
 *       safe list tojson int abs reverse items selectattr rejectattr}; tests {@code defined undefined none
 *       string number integer float boolean true false mapping iterable sequence even odd eq equalto ne};
 *   <li>string methods {@code strip lstrip rstrip startswith endswith split upper lower title capitalize
 *       replace}, dict methods {@code items keys values get}; functions {@code raise_exception, namespace,
 *       range, strftime_now}.
 * </ul>
 * Anything else (macros, includes, other filters) fails to parse, or to render, with a message saying what.
 * Values are Java strings, longs, doubles, booleans, null (none), lists and string-keyed maps.
 */
final class Jinja {
    /** A template this interpreter cannot run, or one that stopped itself with raise_exception. */
    static final class TemplateException extends IllegalArgumentException {
        TemplateException(String message) {
            super(message);
        }
    }

    private static final Set<String> FILTERS = Set.of("trim", "length", "count", "upper", "lower", "capitalize",
            "title", "string", "first", "last", "join", "default", "d", "replace", "safe", "list", "tojson", "int",
            "abs", "reverse", "items", "selectattr", "rejectattr");
    private static final Set<String> TESTS = Set.of("defined", "undefined", "none", "string", "number", "integer",
            "float", "boolean", "true", "false", "mapping", "iterable", "sequence", "even", "odd", "eq", "equalto",
            "ne", "==", "!=");

    private final List<Node> body;

    private Jinja(List<Node> body) {
        this.body = body;
    }

    /** Parses a template; a {@link TemplateException} names the first construct it does not support. */
    static Jinja parse(String source) {
        return new Jinja(new TreeParser(segments(source)).document());
    }

    /** Renders with these variables; a {@link TemplateException} says why it cannot. */
    String render(Map<String, Object> variables) {
        Scope globals = new Scope(null);
        globals.vars.put("raise_exception", (Function) (args, kw) -> {
            throw new TemplateException(args.isEmpty() ? "raise_exception" : str(args.get(0)));
        });
        globals.vars.put("namespace", (Function) (args, kw) -> new LinkedHashMap<>(kw));
        globals.vars.put("range", (Function) Jinja::range);
        globals.vars.put("strftime_now", (Function) (args, kw) -> strftime(str(arg(args, 0, "strftime_now")),
                ZonedDateTime.now()));
        Scope scope = new Scope(globals);
        scope.vars.putAll(variables);
        StringBuilder out = new StringBuilder();
        try {
            run(body, scope, out);
        } catch (LoopControl c) {
            throw new TemplateException("'" + c.keyword + "' outside a loop");
        } catch (StackOverflowError e) {
            throw new TemplateException("the template nests too deeply");
        }
        return out.toString();
    }

    // ---------------------------------------------------------------- lexing

    private enum Kind { TEXT, OUTPUT, STATEMENT, COMMENT }

    private static final class Segment {
        final Kind kind;
        String text;
        final boolean trimBefore, trimAfter, keepBefore;

        Segment(Kind kind, String text, boolean trimBefore, boolean trimAfter, boolean keepBefore) {
            this.kind = kind;
            this.text = text;
            this.trimBefore = trimBefore;
            this.trimAfter = trimAfter;
            this.keepBefore = keepBefore;
        }
    }

    /** Splits the source into text and tags and applies whitespace control, trim_blocks and lstrip_blocks. */
    private static List<Segment> segments(String src) {
        List<Segment> segs = new ArrayList<>();
        int i = 0, n = src.length();
        while (i < n) {
            int open = nextTag(src, i);
            if (open < 0) {
                segs.add(new Segment(Kind.TEXT, src.substring(i), false, false, false));
                break;
            }
            if (open > i) segs.add(new Segment(Kind.TEXT, src.substring(i, open), false, false, false));
            char type = src.charAt(open + 1);
            Kind kind = type == '{' ? Kind.OUTPUT : type == '%' ? Kind.STATEMENT : Kind.COMMENT;
            String close = type == '{' ? "}}" : type == '%' ? "%}" : "#}";
            int start = open + 2;
            boolean trimBefore = start < n && src.charAt(start) == '-';
            boolean keepBefore = start < n && src.charAt(start) == '+';
            if (trimBefore || keepBefore) start++;
            int end = kind == Kind.COMMENT ? src.indexOf(close, start) : closing(src, start, close);
            if (end < 0) throw new TemplateException("a tag opened at offset " + open + " is never closed");
            boolean trimAfter = end > start && src.charAt(end - 1) == '-';
            String inner = src.substring(start, trimAfter ? end - 1 : end);
            segs.add(new Segment(kind, inner, trimBefore, trimAfter, keepBefore));
            i = end + 2;
        }
        for (int k = 0; k < segs.size(); k++) {
            Segment s = segs.get(k);
            if (s.kind == Kind.TEXT) continue;
            Segment before = k > 0 && segs.get(k - 1).kind == Kind.TEXT ? segs.get(k - 1) : null;
            Segment after = k + 1 < segs.size() && segs.get(k + 1).kind == Kind.TEXT ? segs.get(k + 1) : null;
            boolean block = s.kind != Kind.OUTPUT;
            if (before != null) {
                if (s.trimBefore) {
                    before.text = before.text.stripTrailing();
                } else if (block && !s.keepBefore) {
                    // lstrip_blocks: spaces and tabs between the start of the line and a block tag go
                    int lineStart = before.text.lastIndexOf('\n') + 1;
                    boolean atLineStart = lineStart > 0 || k == 1;
                    if (atLineStart && before.text.substring(lineStart).chars().allMatch(c -> c == ' ' || c == '\t')) {
                        before.text = before.text.substring(0, lineStart);
                    }
                }
            }
            if (after != null) {
                if (s.trimAfter) {
                    after.text = after.text.stripLeading();
                } else if (block) {
                    // trim_blocks: the first newline after a block tag goes
                    if (after.text.startsWith("\r\n")) after.text = after.text.substring(2);
                    else if (after.text.startsWith("\n")) after.text = after.text.substring(1);
                }
            }
        }
        return segs;
    }

    private static int nextTag(String src, int from) {
        for (int i = src.indexOf('{', from); i >= 0 && i + 1 < src.length(); i = src.indexOf('{', i + 1)) {
            char c = src.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') return i;
        }
        return -1;
    }

    // The end of a tag, skipping string literals (which may contain "}}" or "%}").
    private static int closing(String src, int from, String close) {
        char quote = 0;
        for (int i = from; i < src.length() - 1; i++) {
            char c = src.charAt(i);
            if (quote != 0) {
                if (c == '\\') i++;
                else if (c == quote) quote = 0;
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else if (src.startsWith(close, i)) {
                return i;
            }
        }
        return -1;
    }

    private enum T { NAME, INT, FLOAT, STRING, OP, END }

    private record Tok(T type, String text) {}

    private static List<Tok> tokens(String s) {
        List<Tok> out = new ArrayList<>();
        int i = 0, n = s.length();
        while (i < n) {
            char c = s.charAt(i);
            if (Character.isWhitespace(c)) {
                i++;
            } else if (Character.isLetter(c) || c == '_') {
                int j = i;
                while (j < n && (Character.isLetterOrDigit(s.charAt(j)) || s.charAt(j) == '_')) j++;
                out.add(new Tok(T.NAME, s.substring(i, j)));
                i = j;
            } else if (Character.isDigit(c)) {
                int j = i;
                while (j < n && Character.isDigit(s.charAt(j))) j++;
                boolean real = j + 1 < n && s.charAt(j) == '.' && Character.isDigit(s.charAt(j + 1));
                if (real) {
                    j++;
                    while (j < n && Character.isDigit(s.charAt(j))) j++;
                }
                out.add(new Tok(real ? T.FLOAT : T.INT, s.substring(i, j)));
                i = j;
            } else if (c == '\'' || c == '"') {
                StringBuilder b = new StringBuilder();
                int j = i + 1;
                for (; j < n && s.charAt(j) != c; j++) {
                    char d = s.charAt(j);
                    if (d == '\\' && j + 1 < n) {
                        char e = s.charAt(++j);
                        switch (e) {
                            case 'n' -> b.append('\n');
                            case 't' -> b.append('\t');
                            case 'r' -> b.append('\r');
                            case '\\', '\'', '"' -> b.append(e);
                            default -> b.append('\\').append(e);
                        }
                    } else {
                        b.append(d);
                    }
                }
                if (j >= n) throw new TemplateException("unterminated string in '" + s.strip() + "'");
                out.add(new Tok(T.STRING, b.toString()));
                i = j + 1;
            } else {
                String two = i + 1 < n ? s.substring(i, i + 2) : "";
                if (Set.of("==", "!=", "<=", ">=", "//", "**").contains(two)) {
                    out.add(new Tok(T.OP, two));
                    i += 2;
                } else if ("+-*/%~<>()[]{}.,:|=".indexOf(c) >= 0) {
                    out.add(new Tok(T.OP, String.valueOf(c)));
                    i++;
                } else {
                    throw new TemplateException("unexpected character '" + c + "' in '" + s.strip() + "'");
                }
            }
        }
        out.add(new Tok(T.END, ""));
        return out;
    }

    // ---------------------------------------------------------------- syntax tree

    private interface Node {}

    private record Text(String text) implements Node {}

    private record Output(Expr expr) implements Node {}

    private record If(List<Expr> conditions, List<List<Node>> bodies, List<Node> otherwise) implements Node {}

    private record For(List<String> targets, Expr iterable, Expr filter, List<Node> body, List<Node> otherwise)
            implements Node {}

    private record SetVar(String name, String attribute, Expr value) implements Node {}

    private record Control(String keyword) implements Node {}

    private record Group(List<Node> nodes) implements Node {}

    private interface Expr {}

    private record Literal(Object value) implements Expr {}

    private record Name(String name) implements Expr {}

    private record Attr(Expr target, String name) implements Expr {}

    private record Index(Expr target, Expr index) implements Expr {}

    private record Slice(Expr target, Expr start, Expr stop, Expr step) implements Expr {}

    private record Call(Expr function, List<Expr> args, Map<String, Expr> kwargs) implements Expr {}

    private record Filter(Expr value, String name, List<Expr> args, Map<String, Expr> kwargs) implements Expr {}

    private record Test(Expr value, String name, List<Expr> args, boolean negated) implements Expr {}

    private record Unary(String op, Expr operand) implements Expr {}

    private record Binary(String op, Expr left, Expr right) implements Expr {}

    private record Conditional(Expr condition, Expr then, Expr otherwise) implements Expr {}

    private record ListExpr(List<Expr> items) implements Expr {}

    private record DictExpr(List<Expr> keys, List<Expr> values) implements Expr {}

    /** Builds the tree from the segments: statements nest until their end tags. */
    private static final class TreeParser {
        private final List<Segment> segs;
        private int at;
        private String stoppedAt; // the keyword of the statement that ended the last body
        private ExprParser stoppedTag;

        TreeParser(List<Segment> segs) {
            this.segs = segs;
        }

        List<Node> document() {
            List<Node> nodes = body(Set.of());
            if (stoppedAt != null) throw new TemplateException("unexpected '" + stoppedAt + "'");
            return nodes;
        }

        // Nodes until a statement whose keyword is in `ends` (consumed; see stoppedAt) or the end.
        private List<Node> body(Set<String> ends) {
            List<Node> nodes = new ArrayList<>();
            stoppedAt = null;
            while (at < segs.size()) {
                Segment s = segs.get(at++);
                switch (s.kind) {
                    case TEXT -> {
                        if (!s.text.isEmpty()) nodes.add(new Text(s.text));
                    }
                    case COMMENT -> { }
                    case OUTPUT -> {
                        ExprParser p = new ExprParser(tokens(s.text));
                        nodes.add(new Output(p.expression(true)));
                        p.end();
                    }
                    case STATEMENT -> {
                        ExprParser p = new ExprParser(tokens(s.text));
                        String keyword = p.name("a statement");
                        if (ends.contains(keyword)) {
                            stoppedAt = keyword;
                            stoppedTag = p;
                            return nodes;
                        }
                        nodes.add(statement(keyword, p));
                    }
                }
            }
            if (!ends.isEmpty()) throw new TemplateException("missing {% " + String.join(" / ", ends) + " %}");
            return nodes;
        }

        private Node statement(String keyword, ExprParser p) {
            switch (keyword) {
                case "if" -> {
                    List<Expr> conditions = new ArrayList<>();
                    List<List<Node>> bodies = new ArrayList<>();
                    conditions.add(p.expression(true));
                    p.end();
                    List<Node> otherwise = List.of();
                    while (true) {
                        bodies.add(body(Set.of("elif", "else", "endif")));
                        String end = stoppedAt;
                        if (end.equals("elif")) {
                            conditions.add(stoppedTag.expression(true));
                            stoppedTag.end();
                        } else if (end.equals("else")) {
                            stoppedTag.end();
                            otherwise = body(Set.of("endif"));
                            stoppedTag.end();
                            break;
                        } else {
                            stoppedTag.end();
                            break;
                        }
                    }
                    stoppedAt = null;
                    return new If(conditions, bodies, otherwise);
                }
                case "for" -> {
                    List<String> targets = new ArrayList<>();
                    targets.add(p.name("a loop variable"));
                    while (p.accept(",")) targets.add(p.name("a loop variable"));
                    p.expectName("in");
                    Expr iterable = p.expression(false);
                    Expr filter = p.acceptName("if") ? p.expression(true) : null;
                    p.end();
                    List<Node> loopBody = body(Set.of("else", "endfor"));
                    List<Node> otherwise = List.of();
                    if (stoppedAt.equals("else")) {
                        stoppedTag.end();
                        otherwise = body(Set.of("endfor"));
                    }
                    stoppedTag.end();
                    stoppedAt = null;
                    return new For(targets, iterable, filter, loopBody, otherwise);
                }
                case "set" -> {
                    String name = p.name("a variable");
                    String attribute = p.accept(".") ? p.name("an attribute") : null;
                    if (!p.accept("=")) throw new TemplateException("block {% set %} is not supported");
                    Expr value = p.expression(true);
                    p.end();
                    return new SetVar(name, attribute, value);
                }
                case "break", "continue" -> {
                    p.end();
                    return new Control(keyword);
                }
                case "generation" -> {
                    p.end();
                    List<Node> inner = body(Set.of("endgeneration"));
                    stoppedTag.end();
                    stoppedAt = null;
                    return new Group(inner);
                }
                default -> throw new TemplateException("{% " + keyword + " %} is not supported");
            }
        }
    }

    /** Recursive descent over one tag's tokens, with Jinja's operator precedence. */
    private static final class ExprParser {
        private final List<Tok> toks;
        private int pos;

        ExprParser(List<Tok> toks) {
            this.toks = toks;
        }

        private Tok peek() {
            return toks.get(pos);
        }

        boolean accept(String op) {
            if (peek().type() == T.OP && peek().text().equals(op)) {
                pos++;
                return true;
            }
            return false;
        }

        boolean acceptName(String name) {
            if (peek().type() == T.NAME && peek().text().equals(name)) {
                pos++;
                return true;
            }
            return false;
        }

        void expect(String op) {
            if (!accept(op)) throw unexpected("'" + op + "'");
        }

        void expectName(String name) {
            if (!acceptName(name)) throw unexpected("'" + name + "'");
        }

        String name(String what) {
            if (peek().type() != T.NAME) throw unexpected(what);
            return toks.get(pos++).text();
        }

        void end() {
            if (peek().type() != T.END) throw unexpected("the end of the tag");
        }

        private TemplateException unexpected(String wanted) {
            Tok t = peek();
            return new TemplateException("expected " + wanted + " but found "
                    + (t.type() == T.END ? "the end of the tag" : "'" + t.text() + "'"));
        }

        /** An expression; {@code conditional}: may be {@code a if c else b} (not in a for's iterable). */
        Expr expression(boolean conditional) {
            Expr e = or();
            if (conditional && acceptName("if")) {
                Expr condition = or();
                Expr otherwise = acceptName("else") ? expression(true) : new Literal(Undefined.NONE_GIVEN);
                return new Conditional(condition, e, otherwise);
            }
            return e;
        }

        private Expr or() {
            Expr e = and();
            while (acceptName("or")) e = new Binary("or", e, and());
            return e;
        }

        private Expr and() {
            Expr e = not();
            while (acceptName("and")) e = new Binary("and", e, not());
            return e;
        }

        private Expr not() {
            return acceptName("not") ? new Unary("not", not()) : compare();
        }

        private Expr compare() {
            Expr e = additive();
            while (true) {
                Tok t = peek();
                if (t.type() == T.OP && Set.of("==", "!=", "<", ">", "<=", ">=").contains(t.text())) {
                    pos++;
                    e = new Binary(t.text(), e, additive());
                } else if (acceptName("in")) {
                    e = new Binary("in", e, additive());
                } else if (t.type() == T.NAME && t.text().equals("not") && toks.get(pos + 1).text().equals("in")) {
                    pos += 2;
                    e = new Unary("not", new Binary("in", e, additive()));
                } else {
                    return e;
                }
            }
        }

        private Expr additive() {
            Expr e = concat();
            while (true) {
                if (accept("+")) e = new Binary("+", e, concat());
                else if (accept("-")) e = new Binary("-", e, concat());
                else return e;
            }
        }

        private Expr concat() {
            Expr e = multiplicative();
            while (accept("~")) e = new Binary("~", e, multiplicative());
            return e;
        }

        private Expr multiplicative() {
            Expr e = unary();
            while (true) {
                Tok t = peek();
                if (t.type() == T.OP && Set.of("*", "/", "//", "%").contains(t.text())) {
                    pos++;
                    e = new Binary(t.text(), e, unary());
                } else {
                    return e;
                }
            }
        }

        private Expr unary() {
            if (accept("-")) return new Unary("-", unary());
            if (accept("+")) return unary();
            return filtersAndTests(postfix(primary()));
        }

        private Expr filtersAndTests(Expr e) {
            while (true) {
                if (accept("|")) {
                    String name = name("a filter name");
                    if (!FILTERS.contains(name)) throw new TemplateException("filter '" + name + "' is not supported");
                    List<Expr> args = new ArrayList<>();
                    Map<String, Expr> kwargs = new LinkedHashMap<>();
                    if (accept("(")) arguments(args, kwargs);
                    e = new Filter(e, name, args, kwargs);
                } else if (acceptName("is")) {
                    boolean negated = acceptName("not");
                    Tok t = peek();
                    String name = t.type() == T.OP && (t.text().equals("==") || t.text().equals("!=")) ? t.text()
                            : t.type() == T.NAME ? t.text() : null;
                    if (name == null) throw unexpected("a test name");
                    pos++;
                    if (!TESTS.contains(name)) throw new TemplateException("test '" + name + "' is not supported");
                    List<Expr> args = new ArrayList<>();
                    if (accept("(")) {
                        arguments(args, new LinkedHashMap<>());
                    } else if (Set.of("eq", "equalto", "ne", "==", "!=").contains(name)) {
                        args.add(additive());
                    }
                    e = new Test(e, name, args, negated);
                } else {
                    return e;
                }
            }
        }

        private Expr postfix(Expr e) {
            while (true) {
                if (accept(".")) {
                    e = new Attr(e, name("an attribute name"));
                } else if (accept("[")) {
                    Expr start = null, stop = null, step = null;
                    boolean slice = false;
                    if (!(peek().type() == T.OP && peek().text().equals(":"))) start = expression(true);
                    if (accept(":")) {
                        slice = true;
                        if (!isOp(":") && !isOp("]")) stop = expression(true);
                        if (accept(":") && !isOp("]")) step = expression(true);
                    }
                    expect("]");
                    e = slice ? new Slice(e, start, stop, step) : new Index(e, start);
                } else if (accept("(")) {
                    List<Expr> args = new ArrayList<>();
                    Map<String, Expr> kwargs = new LinkedHashMap<>();
                    arguments(args, kwargs);
                    e = new Call(e, args, kwargs);
                } else {
                    return e;
                }
            }
        }

        private boolean isOp(String op) {
            return peek().type() == T.OP && peek().text().equals(op);
        }

        // After "(": positional and keyword arguments up to ")".
        private void arguments(List<Expr> args, Map<String, Expr> kwargs) {
            if (accept(")")) return;
            do {
                if (peek().type() == T.NAME && toks.get(pos + 1).text().equals("=")
                        && toks.get(pos + 1).type() == T.OP) {
                    String key = name("an argument name");
                    expect("=");
                    kwargs.put(key, expression(true));
                } else {
                    args.add(expression(true));
                }
            } while (accept(","));
            expect(")");
        }

        private Expr primary() {
            Tok t = peek();
            switch (t.type()) {
                case STRING -> {
                    pos++;
                    StringBuilder b = new StringBuilder(t.text());
                    while (peek().type() == T.STRING) b.append(toks.get(pos++).text()); // adjacent literals join
                    return new Literal(b.toString());
                }
                case INT -> {
                    pos++;
                    return new Literal(Long.parseLong(t.text()));
                }
                case FLOAT -> {
                    pos++;
                    return new Literal(Double.parseDouble(t.text()));
                }
                case NAME -> {
                    pos++;
                    return switch (t.text()) {
                        case "true", "True" -> new Literal(true);
                        case "false", "False" -> new Literal(false);
                        case "none", "None" -> new Literal(null);
                        default -> new Name(t.text());
                    };
                }
                case OP -> {
                    if (accept("(")) {
                        Expr e = expression(true);
                        if (accept(",")) { // a tuple: a list will do
                            List<Expr> items = new ArrayList<>(List.of(e));
                            if (!isOp(")")) {
                                do items.add(expression(true)); while (accept(",") && !isOp(")"));
                            }
                            expect(")");
                            return new ListExpr(items);
                        }
                        expect(")");
                        return e;
                    }
                    if (accept("[")) {
                        List<Expr> items = new ArrayList<>();
                        if (!accept("]")) {
                            do {
                                if (isOp("]")) break;
                                items.add(expression(true));
                            } while (accept(","));
                            expect("]");
                        }
                        return new ListExpr(items);
                    }
                    if (accept("{")) {
                        List<Expr> keys = new ArrayList<>(), values = new ArrayList<>();
                        if (!accept("}")) {
                            do {
                                if (isOp("}")) break;
                                keys.add(expression(true));
                                expect(":");
                                values.add(expression(true));
                            } while (accept(","));
                            expect("}");
                        }
                        return new DictExpr(keys, values);
                    }
                    throw unexpected("a value");
                }
                default -> throw unexpected("a value");
            }
        }
    }

    // ---------------------------------------------------------------- evaluation

    /** A missing variable, key or attribute: empty when printed, false, iterable as nothing. */
    private static final class Undefined {
        static final Undefined NONE_GIVEN = new Undefined("(no else branch)");
        final String name;

        Undefined(String name) {
            this.name = name;
        }
    }

    @FunctionalInterface
    private interface Function {
        Object call(List<Object> args, Map<String, Object> kwargs);
    }

    private static final class LoopControl extends RuntimeException {
        final String keyword;

        LoopControl(String keyword) {
            super(keyword, null, false, false);
            this.keyword = keyword;
        }
    }

    private static final class Scope {
        final Scope parent;
        final Map<String, Object> vars = new HashMap<>();

        Scope(Scope parent) {
            this.parent = parent;
        }

        Object get(String name) {
            for (Scope s = this; s != null; s = s.parent) {
                if (s.vars.containsKey(name)) return s.vars.get(name);
            }
            return new Undefined(name);
        }
    }

    private void run(List<Node> nodes, Scope scope, StringBuilder out) {
        for (Node node : nodes) {
            if (node instanceof Text t) {
                out.append(t.text());
            } else if (node instanceof Output o) {
                out.append(str(eval(o.expr(), scope)));
            } else if (node instanceof If f) {
                boolean done = false;
                for (int i = 0; i < f.conditions().size() && !done; i++) {
                    if (truthy(eval(f.conditions().get(i), scope))) {
                        run(f.bodies().get(i), scope, out);
                        done = true;
                    }
                }
                if (!done) run(f.otherwise(), scope, out);
            } else if (node instanceof For f) {
                loop(f, scope, out);
            } else if (node instanceof SetVar s) {
                Object value = eval(s.value(), scope);
                if (s.attribute() == null) {
                    scope.vars.put(s.name(), value);
                } else if (scope.get(s.name()) instanceof Map<?, ?> ns) {
                    @SuppressWarnings("unchecked")
                    Map<String, Object> m = (Map<String, Object>) ns;
                    m.put(s.attribute(), value);
                } else {
                    throw new TemplateException("cannot set an attribute of '" + s.name() + "': not a namespace");
                }
            } else if (node instanceof Control c) {
                throw new LoopControl(c.keyword());
            } else if (node instanceof Group g) {
                run(g.nodes(), scope, out);
            }
        }
    }

    private void loop(For f, Scope scope, StringBuilder out) {
        List<Object> items = new ArrayList<>();
        for (Object item : iterate(eval(f.iterable(), scope))) {
            if (f.filter() != null) {
                Scope probe = new Scope(scope);
                bind(f.targets(), item, probe);
                if (!truthy(eval(f.filter(), probe))) continue;
            }
            items.add(item);
        }
        if (items.isEmpty()) {
            run(f.otherwise(), scope, out);
            return;
        }
        for (int i = 0; i < items.size(); i++) {
            Scope inner = new Scope(scope); // assignments inside a loop do not leak out of it
            bind(f.targets(), items.get(i), inner);
            Map<String, Object> loop = new HashMap<>();
            loop.put("index0", (long) i);
            loop.put("index", (long) i + 1);
            loop.put("revindex0", (long) (items.size() - 1 - i));
            loop.put("revindex", (long) (items.size() - i));
            loop.put("first", i == 0);
            loop.put("last", i == items.size() - 1);
            loop.put("length", (long) items.size());
            loop.put("previtem", i > 0 ? items.get(i - 1) : new Undefined("loop.previtem"));
            loop.put("nextitem", i + 1 < items.size() ? items.get(i + 1) : new Undefined("loop.nextitem"));
            inner.vars.put("loop", loop);
            try {
                run(f.body(), inner, out);
            } catch (LoopControl c) {
                if (c.keyword.equals("break")) break;
            }
        }
    }

    private static void bind(List<String> targets, Object item, Scope scope) {
        if (targets.size() == 1) {
            scope.vars.put(targets.get(0), item);
            return;
        }
        List<Object> parts = iterate(item);
        if (parts.size() != targets.size()) {
            throw new TemplateException("cannot unpack " + parts.size() + " values into " + targets.size() + " names");
        }
        for (int i = 0; i < targets.size(); i++) scope.vars.put(targets.get(i), parts.get(i));
    }

    private Object eval(Expr e, Scope scope) {
        if (e instanceof Literal l) return l.value();
        if (e instanceof Name n) return scope.get(n.name());
        if (e instanceof Attr a) return attribute(eval(a.target(), scope), a.name());
        if (e instanceof Index i) return index(eval(i.target(), scope), eval(i.index(), scope));
        if (e instanceof Slice s) {
            return slice(eval(s.target(), scope), s.start() == null ? null : eval(s.start(), scope),
                    s.stop() == null ? null : eval(s.stop(), scope), s.step() == null ? null : eval(s.step(), scope));
        }
        if (e instanceof Call c) return call(c, scope);
        if (e instanceof Filter f) {
            return filter(f.name(), eval(f.value(), scope), values(f.args(), scope), kwValues(f.kwargs(), scope));
        }
        if (e instanceof Test t) return t.negated() != test(t.name(), eval(t.value(), scope), values(t.args(), scope));
        if (e instanceof Unary u) {
            Object v = eval(u.operand(), scope);
            if (u.op().equals("not")) return !truthy(v);
            if (v instanceof Long x) return -x;
            if (v instanceof Double x) return -x;
            throw new TemplateException("cannot negate " + typeName(v));
        }
        if (e instanceof Binary b) return binary(b, scope);
        if (e instanceof Conditional c) {
            return truthy(eval(c.condition(), scope)) ? eval(c.then(), scope) : eval(c.otherwise(), scope);
        }
        if (e instanceof ListExpr l) return values(l.items(), scope);
        DictExpr d = (DictExpr) e;
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < d.keys().size(); i++) m.put(str(eval(d.keys().get(i), scope)), eval(d.values().get(i), scope));
        return m;
    }

    private List<Object> values(List<Expr> exprs, Scope scope) {
        List<Object> out = new ArrayList<>();
        for (Expr x : exprs) out.add(eval(x, scope));
        return out;
    }

    private Map<String, Object> kwValues(Map<String, Expr> exprs, Scope scope) {
        Map<String, Object> out = new LinkedHashMap<>();
        exprs.forEach((k, x) -> out.put(k, eval(x, scope)));
        return out;
    }

    private Object binary(Binary b, Scope scope) {
        Object l = eval(b.left(), scope);
        switch (b.op()) {
            case "and":
                return truthy(l) ? eval(b.right(), scope) : l;
            case "or":
                return truthy(l) ? l : eval(b.right(), scope);
            default:
                break;
        }
        Object r = eval(b.right(), scope);
        switch (b.op()) {
            case "==":
                return equal(l, r);
            case "!=":
                return !equal(l, r);
            case "<", ">", "<=", ">=": {
                int c = compare(l, r);
                return switch (b.op()) {
                    case "<" -> c < 0;
                    case ">" -> c > 0;
                    case "<=" -> c <= 0;
                    default -> c >= 0;
                };
            }
            case "in":
                return contains(r, l);
            case "~":
                return str(l) + str(r);
            case "+":
                if (l instanceof String x && r instanceof String y) return x + y;
                if (l instanceof List<?> x && r instanceof List<?> y) {
                    List<Object> out = new ArrayList<>(x);
                    out.addAll(y);
                    return out;
                }
                return arithmetic("+", l, r);
            default:
                return arithmetic(b.op(), l, r);
        }
    }

    private static Object arithmetic(String op, Object l, Object r) {
        if (!(l instanceof Long || l instanceof Double) || !(r instanceof Long || r instanceof Double)) {
            throw new TemplateException("unsupported operand types for " + op + ": " + typeName(l) + " and "
                    + typeName(r));
        }
        if (l instanceof Long x && r instanceof Long y && !op.equals("/")) {
            switch (op) {
                case "+": return x + y;
                case "-": return x - y;
                case "*": return x * y;
                case "//":
                    if (y == 0) throw new TemplateException("division by zero");
                    return Math.floorDiv(x, y);
                default:
                    if (y == 0) throw new TemplateException("division by zero");
                    return Math.floorMod(x, y);
            }
        }
        double x = ((Number) l).doubleValue(), y = ((Number) r).doubleValue();
        return switch (op) {
            case "+" -> x + y;
            case "-" -> x - y;
            case "*" -> x * y;
            case "/" -> {
                if (y == 0) throw new TemplateException("division by zero");
                yield x / y;
            }
            case "//" -> Math.floor(x / y);
            default -> x - Math.floor(x / y) * y;
        };
    }

    private Object call(Call c, Scope scope) {
        List<Object> args = values(c.args(), scope);
        Map<String, Object> kwargs = kwValues(c.kwargs(), scope);
        if (c.function() instanceof Attr a) {
            Object target = eval(a.target(), scope);
            if (target instanceof String s) return stringMethod(s, a.name(), args);
            if (target instanceof Map<?, ?> m && !m.containsKey(a.name())) return mapMethod(m, a.name(), args);
            Object f = attribute(target, a.name());
            if (f instanceof Function fn) return fn.call(args, kwargs);
            throw new TemplateException("'" + a.name() + "' of " + typeName(target) + " is not callable");
        }
        Object f = eval(c.function(), scope);
        if (f instanceof Function fn) return fn.call(args, kwargs);
        throw new TemplateException((f instanceof Undefined u ? "'" + u.name + "' is undefined" : typeName(f))
                + " and cannot be called");
    }

    private static Object attribute(Object target, String name) {
        if (target instanceof Map<?, ?> m) return m.containsKey(name) ? m.get(name) : new Undefined(name);
        if (target instanceof Undefined u) throw new TemplateException("'" + u.name + "' is undefined (reading ." + name + ")");
        return new Undefined(name);
    }

    private static Object index(Object target, Object key) {
        if (target instanceof Map<?, ?> m) {
            String k = str(key);
            return m.containsKey(k) ? m.get(k) : new Undefined(k);
        }
        if (target instanceof Undefined u) throw new TemplateException("'" + u.name + "' is undefined (indexing it)");
        if ((target instanceof List<?> || target instanceof String) && key instanceof Long i) {
            int n = target instanceof List<?> l ? l.size() : ((String) target).length();
            long at = i < 0 ? n + i : i;
            if (at < 0 || at >= n) return new Undefined("[" + i + "]");
            return target instanceof List<?> l ? l.get((int) at) : String.valueOf(((String) target).charAt((int) at));
        }
        throw new TemplateException("cannot index " + typeName(target) + " with " + typeName(key));
    }

    private static Object slice(Object target, Object start, Object stop, Object step) {
        List<Object> items;
        if (target instanceof String s) {
            items = new ArrayList<>();
            for (char ch : s.toCharArray()) items.add(String.valueOf(ch));
        } else if (target instanceof List<?> l) {
            items = new ArrayList<>(l);
        } else {
            throw new TemplateException("cannot slice " + typeName(target));
        }
        int n = items.size();
        long st = step == null ? 1 : integer(step, "slice step");
        if (st == 0) throw new TemplateException("slice step cannot be zero");
        List<Object> out = new ArrayList<>();
        if (st > 0) {
            long a = bound(start, 0, n, false), b = bound(stop, n, n, false);
            for (long i = a; i < b; i += st) out.add(items.get((int) i));
        } else {
            long a = bound(start, n - 1, n, true), b = stop == null ? -1 : bound(stop, -1, n, true);
            for (long i = a; i > b; i += st) out.add(items.get((int) i));
        }
        if (target instanceof String) {
            StringBuilder sb = new StringBuilder();
            out.forEach(sb::append);
            return sb.toString();
        }
        return out;
    }

    // Python's slice index normalisation.
    private static long bound(Object v, long otherwise, int n, boolean reverse) {
        if (v == null) return otherwise;
        long i = integer(v, "slice index");
        if (i < 0) i += n;
        return reverse ? Math.max(-1, Math.min(n - 1, i)) : Math.max(0, Math.min(n, i));
    }

    private static Object stringMethod(String s, String name, List<Object> args) {
        switch (name) {
            case "strip": return args.isEmpty() ? s.strip() : stripChars(s, str(args.get(0)), true, true);
            case "lstrip": return args.isEmpty() ? s.stripLeading() : stripChars(s, str(args.get(0)), true, false);
            case "rstrip": return args.isEmpty() ? s.stripTrailing() : stripChars(s, str(args.get(0)), false, true);
            case "startswith": return s.startsWith(str(arg(args, 0, name)));
            case "endswith": return s.endsWith(str(arg(args, 0, name)));
            case "upper": return s.toUpperCase(Locale.ROOT);
            case "lower": return s.toLowerCase(Locale.ROOT);
            case "title": return title(s);
            case "capitalize": return capitalize(s);
            case "replace": return s.replace(str(arg(args, 0, name)), str(arg(args, 1, name)));
            case "split": {
                List<Object> out = new ArrayList<>();
                if (args.isEmpty() || args.get(0) == null) {
                    for (String part : s.strip().split("\\s+")) if (!part.isEmpty()) out.add(part);
                } else {
                    String sep = str(args.get(0));
                    if (sep.isEmpty()) throw new TemplateException("split: empty separator");
                    int from = 0;
                    for (int at = s.indexOf(sep); at >= 0; at = s.indexOf(sep, from)) {
                        out.add(s.substring(from, at));
                        from = at + sep.length();
                    }
                    out.add(s.substring(from));
                }
                return out;
            }
            default: throw new TemplateException("string method '" + name + "' is not supported");
        }
    }

    private static Object mapMethod(Map<?, ?> m, String name, List<Object> args) {
        switch (name) {
            case "items": {
                List<Object> out = new ArrayList<>();
                m.forEach((k, v) -> out.add(pair(k, v)));
                return out;
            }
            case "keys": return new ArrayList<>(m.keySet());
            case "values": return new ArrayList<>(m.values());
            case "get": {
                Object k = str(arg(args, 0, name));
                return m.containsKey(k) ? m.get(k) : args.size() > 1 ? args.get(1) : null;
            }
            default: throw new TemplateException("method '" + name + "' is not supported");
        }
    }

    private static List<Object> pair(Object a, Object b) {
        List<Object> p = new ArrayList<>(2);
        p.add(a);
        p.add(b);
        return p;
    }

    private static Object filter(String name, Object v, List<Object> args, Map<String, Object> kwargs) {
        switch (name) {
            case "trim": return str(v).strip();
            case "length", "count": return (long) length(v);
            case "upper": return str(v).toUpperCase(Locale.ROOT);
            case "lower": return str(v).toLowerCase(Locale.ROOT);
            case "capitalize": return capitalize(str(v));
            case "title": return title(str(v));
            case "string", "safe": return v instanceof String ? v : str(v);
            case "first": {
                List<Object> items = iterate(v);
                return items.isEmpty() ? new Undefined("first") : items.get(0);
            }
            case "last": {
                List<Object> items = iterate(v);
                return items.isEmpty() ? new Undefined("last") : items.get(items.size() - 1);
            }
            case "join": {
                String sep = args.isEmpty() ? str(kwargs.getOrDefault("d", "")) : str(args.get(0));
                StringBuilder b = new StringBuilder();
                List<Object> items = iterate(v);
                for (int i = 0; i < items.size(); i++) b.append(i > 0 ? sep : "").append(str(items.get(i)));
                return b.toString();
            }
            case "default", "d": {
                boolean falsy = args.size() > 1 ? truthy(args.get(1)) : truthy(kwargs.getOrDefault("boolean", false));
                boolean use = v instanceof Undefined || (falsy && !truthy(v));
                return use ? (args.isEmpty() ? "" : args.get(0)) : v;
            }
            case "replace": return str(v).replace(str(arg(args, 0, name)), str(arg(args, 1, name)));
            case "list": return iterate(v);
            case "reverse": {
                if (v instanceof String s) return new StringBuilder(s).reverse().toString();
                List<Object> items = new ArrayList<>(iterate(v));
                java.util.Collections.reverse(items);
                return items;
            }
            case "items": {
                if (!(v instanceof Map<?, ?> m)) throw new TemplateException("items of " + typeName(v));
                return mapMethod(m, "items", List.of());
            }
            case "int": {
                if (v instanceof Long) return v;
                if (v instanceof Double d) return (long) d.doubleValue();
                try {
                    return Long.parseLong(str(v).strip());
                } catch (NumberFormatException e) {
                    return args.isEmpty() ? 0L : args.get(0);
                }
            }
            case "abs": {
                if (v instanceof Long x) return Math.abs(x);
                if (v instanceof Double x) return Math.abs(x);
                throw new TemplateException("abs of " + typeName(v));
            }
            case "tojson": {
                Object indent = args.isEmpty() ? kwargs.get("indent") : args.get(0);
                StringBuilder b = new StringBuilder();
                json(v, indent == null ? -1 : (int) integer(indent, "indent"), 0, b);
                return b.toString();
            }
            default: { // selectattr, rejectattr
                boolean keep = name.equals("selectattr");
                String attr = str(arg(args, 0, name));
                List<Object> out = new ArrayList<>();
                for (Object item : iterate(v)) {
                    Object value = attribute(item, attr);
                    boolean pass = args.size() < 2 ? truthy(value)
                            : test(str(args.get(1)), value, args.subList(2, args.size()));
                    if (pass == keep) out.add(item);
                }
                return out;
            }
        }
    }

    private static boolean test(String name, Object v, List<Object> args) {
        switch (name) {
            case "defined": return !(v instanceof Undefined);
            case "undefined": return v instanceof Undefined;
            case "none": return v == null;
            case "string": return v instanceof String;
            case "number": return v instanceof Long || v instanceof Double;
            case "integer": return v instanceof Long;
            case "float": return v instanceof Double;
            case "boolean": return v instanceof Boolean;
            case "true": return Boolean.TRUE.equals(v);
            case "false": return Boolean.FALSE.equals(v);
            case "mapping": return v instanceof Map;
            case "iterable": return v instanceof List || v instanceof Map || v instanceof String;
            case "sequence": return v instanceof List || v instanceof String;
            case "even": return integer(v, "even") % 2 == 0;
            case "odd": return integer(v, "odd") % 2 != 0;
            case "ne", "!=": return !equal(v, arg(args, 0, name));
            case "eq", "equalto", "==": return equal(v, arg(args, 0, name));
            default: throw new TemplateException("test '" + name + "' is not supported");
        }
    }

    private static Object range(List<Object> args, Map<String, Object> kwargs) {
        long start = 0, stop, step = 1;
        if (args.size() == 1) {
            stop = integer(args.get(0), "range");
        } else if (args.size() >= 2) {
            start = integer(args.get(0), "range");
            stop = integer(args.get(1), "range");
            if (args.size() > 2) step = integer(args.get(2), "range");
        } else {
            throw new TemplateException("range needs arguments");
        }
        if (step == 0) throw new TemplateException("range step cannot be zero");
        List<Object> out = new ArrayList<>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step) {
            if (out.size() >= 100_000) throw new TemplateException("range too long");
            out.add(i);
        }
        return out;
    }

    /** Python's strftime for the directives chat templates use (dates in system prompts). */
    static String strftime(String format, ZonedDateTime t) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                b.append(c);
                continue;
            }
            char d = format.charAt(++i);
            switch (d) {
                case 'd' -> b.append(String.format("%02d", t.getDayOfMonth()));
                case 'm' -> b.append(String.format("%02d", t.getMonthValue()));
                case 'Y' -> b.append(t.getYear());
                case 'y' -> b.append(String.format("%02d", t.getYear() % 100));
                case 'H' -> b.append(String.format("%02d", t.getHour()));
                case 'M' -> b.append(String.format("%02d", t.getMinute()));
                case 'S' -> b.append(String.format("%02d", t.getSecond()));
                case 'b' -> b.append(t.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'B' -> b.append(t.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'a' -> b.append(t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'A' -> b.append(t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case '%' -> b.append('%');
                default -> throw new TemplateException("strftime directive %" + d + " is not supported");
            }
        }
        return b.toString();
    }

    // ---------------------------------------------------------------- Python semantics

    private static Object arg(List<Object> args, int i, String what) {
        if (i >= args.size()) throw new TemplateException(what + ": missing argument " + (i + 1));
        return args.get(i);
    }

    private static long integer(Object v, String what) {
        if (v instanceof Long x) return x;
        throw new TemplateException(what + ": expected an integer, got " + typeName(v));
    }

    static boolean truthy(Object v) {
        if (v == null || v instanceof Undefined) return false;
        if (v instanceof Boolean b) return b;
        if (v instanceof Long x) return x != 0;
        if (v instanceof Double x) return x != 0;
        if (v instanceof String s) return !s.isEmpty();
        if (v instanceof List<?> l) return !l.isEmpty();
        if (v instanceof Map<?, ?> m) return !m.isEmpty();
        return true;
    }

    private static boolean equal(Object a, Object b) {
        if ((a instanceof Long || a instanceof Double) && (b instanceof Long || b instanceof Double)) {
            return ((Number) a).doubleValue() == ((Number) b).doubleValue();
        }
        if (a instanceof Undefined || b instanceof Undefined) return a instanceof Undefined && b instanceof Undefined;
        if (a instanceof List<?> x && b instanceof List<?> y) {
            if (x.size() != y.size()) return false;
            for (int i = 0; i < x.size(); i++) if (!equal(x.get(i), y.get(i))) return false;
            return true;
        }
        return a == null ? b == null : a.equals(b);
    }

    private static int compare(Object a, Object b) {
        if ((a instanceof Long || a instanceof Double) && (b instanceof Long || b instanceof Double)) {
            return Double.compare(((Number) a).doubleValue(), ((Number) b).doubleValue());
        }
        if (a instanceof String x && b instanceof String y) return x.compareTo(y);
        throw new TemplateException("cannot compare " + typeName(a) + " with " + typeName(b));
    }

    private static boolean contains(Object container, Object item) {
        if (container instanceof String s) {
            if (!(item instanceof String x)) throw new TemplateException("'in <string>' needs a string on the left");
            return s.contains(x);
        }
        if (container instanceof Map<?, ?> m) return m.containsKey(str(item));
        if (container instanceof Undefined) return false;
        for (Object o : iterate(container)) if (equal(o, item)) return true;
        return false;
    }

    private static int length(Object v) {
        if (v instanceof String s) return s.length();
        if (v instanceof List<?> l) return l.size();
        if (v instanceof Map<?, ?> m) return m.size();
        if (v instanceof Undefined) return 0;
        throw new TemplateException("length of " + typeName(v));
    }

    private static List<Object> iterate(Object v) {
        if (v instanceof List<?> l) return new ArrayList<>(l);
        if (v instanceof Map<?, ?> m) return new ArrayList<>(m.keySet());
        if (v instanceof Undefined) return List.of();
        if (v instanceof String s) {
            List<Object> out = new ArrayList<>();
            for (char c : s.toCharArray()) out.add(String.valueOf(c));
            return out;
        }
        throw new TemplateException(typeName(v) + " is not iterable");
    }

    /** Python's str() of a value, as {{ }} prints it. */
    static String str(Object v) {
        if (v == null) return "None";
        if (v instanceof Undefined) return "";
        if (v instanceof String s) return s;
        if (v instanceof Boolean b) return b ? "True" : "False";
        if (v instanceof Double d) return pythonFloat(d);
        if (v instanceof List<?> || v instanceof Map<?, ?>) {
            StringBuilder b = new StringBuilder();
            repr(v, b);
            return b.toString();
        }
        return v.toString();
    }

    private static void repr(Object v, StringBuilder b) {
        if (v instanceof String s) {
            b.append('\'').append(s.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")).append('\'');
        } else if (v instanceof List<?> l) {
            b.append('[');
            for (int i = 0; i < l.size(); i++) {
                if (i > 0) b.append(", ");
                repr(l.get(i), b);
            }
            b.append(']');
        } else if (v instanceof Map<?, ?> m) {
            b.append('{');
            int i = 0;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (i++ > 0) b.append(", ");
                repr(e.getKey(), b);
                b.append(": ");
                repr(e.getValue(), b);
            }
            b.append('}');
        } else {
            b.append(str(v));
        }
    }

    private static String pythonFloat(double d) {
        if (d == Math.rint(d) && !Double.isInfinite(d) && Math.abs(d) < 1e16) return (long) d + ".0";
        return Double.toString(d);
    }

    /** json.dumps(v, ensure_ascii=False, indent=...) as Hugging Face's tojson writes it. */
    private static void json(Object v, int indent, int depth, StringBuilder b) {
        if (v == null || v instanceof Undefined) {
            b.append("null");
        } else if (v instanceof Boolean x) {
            b.append(x ? "true" : "false");
        } else if (v instanceof Double d) {
            b.append(pythonFloat(d));
        } else if (v instanceof Long x) {
            b.append(x);
        } else if (v instanceof String s) {
            b.append('"');
            for (char c : s.toCharArray()) {
                switch (c) {
                    case '"' -> b.append("\\\"");
                    case '\\' -> b.append("\\\\");
                    case '\n' -> b.append("\\n");
                    case '\r' -> b.append("\\r");
                    case '\t' -> b.append("\\t");
                    case '\b' -> b.append("\\b");
                    case '\f' -> b.append("\\f");
                    default -> {
                        if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                        else b.append(c);
                    }
                }
            }
            b.append('"');
        } else if (v instanceof List<?> || v instanceof Map<?, ?>) {
            boolean list = v instanceof List<?>;
            List<?> entries = list ? (List<?>) v : new ArrayList<>(((Map<?, ?>) v).entrySet());
            b.append(list ? '[' : '{');
            if (!entries.isEmpty()) {
                for (int i = 0; i < entries.size(); i++) {
                    if (i > 0) b.append(indent >= 0 ? "," : ", ");
                    if (indent >= 0) b.append('\n').append(" ".repeat(indent * (depth + 1)));
                    Object item = entries.get(i);
                    if (list) {
                        json(item, indent, depth + 1, b);
                    } else {
                        Map.Entry<?, ?> e = (Map.Entry<?, ?>) item;
                        json(str(e.getKey()), indent, depth + 1, b);
                        b.append(": ");
                        json(e.getValue(), indent, depth + 1, b);
                    }
                }
                if (indent >= 0) b.append('\n').append(" ".repeat(indent * depth));
            }
            b.append(list ? ']' : '}');
        } else {
            throw new TemplateException("cannot write " + typeName(v) + " as JSON");
        }
    }

    private static String title(String s) {
        StringBuilder b = new StringBuilder(s.length());
        boolean start = true;
        for (char c : s.toCharArray()) {
            b.append(start ? Character.toUpperCase(c) : Character.toLowerCase(c));
            start = !Character.isLetterOrDigit(c);
        }
        return b.toString();
    }

    private static String capitalize(String s) {
        return s.isEmpty() ? s : Character.toUpperCase(s.charAt(0)) + s.substring(1).toLowerCase(Locale.ROOT);
    }

    private static String stripChars(String s, String chars, boolean left, boolean right) {
        int a = 0, b = s.length();
        while (left && a < b && chars.indexOf(s.charAt(a)) >= 0) a++;
        while (right && b > a && chars.indexOf(s.charAt(b - 1)) >= 0) b--;
        return s.substring(a, b);
    }

    private static String typeName(Object v) {
        if (v == null) return "none";
        if (v instanceof Undefined u) return "undefined '" + u.name + "'";
        if (v instanceof String) return "a string";
        if (v instanceof Long) return "an integer";
        if (v instanceof Double) return "a float";
        if (v instanceof Boolean) return "a boolean";
        if (v instanceof List) return "a list";
        if (v instanceof Map) return "a dict";
        return "a function";
    }
}
