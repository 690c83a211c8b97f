package io.skipgpt.eval;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.AffineTransform;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.CombinedDomainXYPlot;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.title.TextTitle;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/**
 * The report's pictures, drawn with Java2D (heatmaps) and JFreeChart (training curves), written as PNG:
 * <ul>
 *   <li>{@link #keepHeatmap}: keep rate per layer, attention and MLP rows, value in every cell;</li>
 *   <li>{@link #tokenMap}: which modules ran for each token of a text, tokens along the bottom, layers up the side,
 *       an attention panel above an MLP panel;</li>
 *   <li>{@link #trainingCurves}: loss and CE, realised sparsity, tau and held-out perplexity against the step.</li>
 * </ul>
 */
public final class Plots {
    static {
        System.setProperty("java.awt.headless", "true");
    }

    private static final Color INK = new Color(0x22, 0x22, 0x22);
    private static final Color RUNS = new Color(0x1f, 0x4e, 0x79);
    private static final Color SKIPPED = new Color(0xe8, 0xee, 0xf4);
    private static final Color GRID = new Color(0xbb, 0xc4, 0xce);
    // viridis at 0, 0.25, 0.5, 0.75, 1
    private static final int[][] VIRIDIS = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};

    private Plots() {}

    public static void write(BufferedImage image, Path file) throws IOException {
        if (!ImageIO.write(image, "png", file.toFile())) throw new IOException("no PNG writer for " + file);
    }

    /** Keep rates per layer: two rows (attention, MLP), one column per layer plus a mean column. */
    public static BufferedImage keepHeatmap(String title, double[] attnKeep, double[] mlpKeep) {
        int layers = attnKeep.length;
        if (mlpKeep.length != layers || layers == 0) throw new IllegalArgumentException("one keep rate per layer for each kind");
        int cw = Math.max(30, Math.min(80, 960 / (layers + 1))), ch = 64;
        int left = 110, top = 64, gap = 14, barW = 22;
        int gridW = (layers + 1) * cw + gap;
        int width = Math.max(left + gridW + 40 + barW + 60, titleWidth(title) + 40), height = top + 2 * ch + 70;
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = canvas(img);
        title(g, title, width, 30);
        Font label = new Font(Font.SANS_SERIF, Font.PLAIN, 14), value = new Font(Font.SANS_SERIF, Font.BOLD, cw >= 40 ? 13 : 11);
        double[][] rows = {attnKeep, mlpKeep};
        String[] names = {"attention", "MLP"};
        for (int r = 0; r < 2; r++) {
            int y = top + r * ch;
            g.setFont(label);
            g.setColor(INK);
            drawRight(g, names[r], left - 10, y + ch / 2 + 5);
            double mean = 0;
            for (int l = 0; l <= layers; l++) {
                double v;
                if (l < layers) {
                    v = rows[r][l];
                    mean += v / layers;
                } else {
                    v = mean;
                }
                int x = left + l * cw + (l == layers ? gap : 0);
                Color c = viridis(v);
                g.setColor(c);
                g.fillRect(x, y, cw, ch);
                g.setColor(Color.WHITE);
                g.drawRect(x, y, cw, ch);
                g.setFont(value);
                g.setColor(luminance(c) > 0.5 ? INK : Color.WHITE);
                drawCentered(g, String.format(Locale.ROOT, cw >= 40 ? "%.2f" : "%.1f", v), x + cw / 2, y + ch / 2 + 5);
            }
        }
        g.setFont(label);
        g.setColor(INK);
        for (int l = 0; l <= layers; l++) {
            int x = left + l * cw + (l == layers ? gap : 0) + cw / 2;
            if (l == layers) {
                drawCentered(g, "mean", x, top + 2 * ch + 20);
            } else if (layers <= 40 || l % 2 == 0) {
                drawCentered(g, Integer.toString(l), x, top + 2 * ch + 20);
            }
        }
        drawCentered(g, "layer", left + layers * cw / 2, top + 2 * ch + 46);
        colourBar(g, left + gridW + 40, top, barW, 2 * ch, "keep");
        g.dispose();
        return img;
    }

    /**
     * Which modules ran for each token: {@code attn[layer][token]} and {@code mlp[layer][token]}. Token texts go
     * along the bottom, read upwards, a leading space shown as "·"; each row ends with that layer's keep rate
     * over these tokens.
     */
    public static BufferedImage tokenMap(String title, List<String> tokens, boolean[][] attn, boolean[][] mlp) {
        int layers = attn.length, n = tokens.size();
        if (mlp.length != layers || layers == 0 || n == 0) throw new IllegalArgumentException("empty token map");
        for (int l = 0; l < layers; l++) {
            if (attn[l].length < n || mlp[l].length < n) throw new IllegalArgumentException("fewer decisions than tokens");
        }
        int cw = 18, ch = Math.max(12, Math.min(22, 300 / layers));
        int left = 120, top = 80, panelGap = 34, right = 70;
        Font mono = new Font(Font.MONOSPACED, Font.PLAIN, 13);
        BufferedImage probe = new BufferedImage(1, 1, BufferedImage.TYPE_INT_RGB);
        Graphics2D pg = probe.createGraphics();
        FontMetrics fm = pg.getFontMetrics(mono);
        String[] labels = new String[n];
        int labelLen = 0;
        for (int i = 0; i < n; i++) {
            labels[i] = visible(tokens.get(i), mono);
            labelLen = Math.max(labelLen, fm.stringWidth(labels[i]));
        }
        pg.dispose();
        int panelH = layers * ch;
        int width = Math.max(left + n * cw + right, titleWidth(title) + 40), height = top + 2 * panelH + panelGap + labelLen + 40;
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = canvas(img);
        title(g, title, width, 30);
        legend(g, left, 56);
        boolean[][][] panels = {attn, mlp};
        String[] names = {"attention", "MLP"};
        Font small = new Font(Font.SANS_SERIF, Font.PLAIN, 12), name = new Font(Font.SANS_SERIF, Font.BOLD, 14);
        for (int p = 0; p < 2; p++) {
            int y0 = top + p * (panelH + panelGap);
            g.setFont(name);
            g.setColor(INK);
            drawRight(g, names[p], left - 44, y0 + panelH / 2 + 5);
            for (int l = 0; l < layers; l++) {
                // layer 0 at the bottom of its panel, as a stack of layers reads
                int y = y0 + (layers - 1 - l) * ch;
                int kept = 0;
                for (int i = 0; i < n; i++) {
                    boolean runs = panels[p][l][i];
                    kept += runs ? 1 : 0;
                    g.setColor(runs ? RUNS : SKIPPED);
                    g.fillRect(left + i * cw, y, cw, ch);
                }
                g.setFont(small);
                g.setColor(INK);
                drawRight(g, "L" + l, left - 8, y + ch / 2 + 4);
                g.drawString(String.format(Locale.ROOT, "%.2f", (double) kept / n), left + n * cw + 8, y + ch / 2 + 4);
            }
            g.setColor(GRID);
            for (int i = 0; i <= n; i++) g.drawLine(left + i * cw, y0, left + i * cw, y0 + panelH);
            for (int l = 0; l <= layers; l++) g.drawLine(left, y0 + l * ch, left + n * cw, y0 + l * ch);
        }
        g.setFont(small);
        g.setColor(INK);
        g.drawString("keep", left + n * cw + 8, top - 8);
        g.setFont(mono);
        int yLabels = top + 2 * panelH + panelGap + 6;
        AffineTransform saved = g.getTransform();
        for (int i = 0; i < n; i++) {
            g.setTransform(saved);
            g.translate(left + i * cw + cw / 2 + 5, yLabels + fm.stringWidth(labels[i]));
            g.rotate(-Math.PI / 2);
            g.drawString(labels[i], 0, 0);
        }
        g.setTransform(saved);
        g.dispose();
        return img;
    }

    /** Loss and CE, realised sparsity (all, attention, MLP, held-out), tau, and held-out perplexity by step. */
    public static BufferedImage trainingCurves(String title, TrainLog log) {
        CombinedDomainXYPlot plot = new CombinedDomainXYPlot(new NumberAxis("optimizer step"));
        plot.setGap(12);
        addPlot(plot, "loss (nats)", curve(log.series("loss"), "loss", 0xd62728), curve(log.series("ce"), "CE", 0x1f77b4));
        addPlot(plot, "sparsity", curve(log.series("sparsity"), "sparsity (batch)", 0x2ca02c),
                curve(complement(log.series("attn_keep")), "attention skipped", 0xff7f0e),
                curve(complement(log.series("mlp_keep")), "MLP skipped", 0x9467bd),
                curve(log.series("eval_sparsity"), "sparsity (held-out)", 0x111111));
        addPlot(plot, "tau", curve(log.series("tau"), "tau", 0x8c564b));
        addPlot(plot, "held-out ppl", curve(log.series("eval_ppl"), "held-out ppl", 0x111111));
        int panels = plot.getSubplots().size();
        if (panels == 0) throw new IllegalArgumentException("the log has none of loss, ce, sparsity, tau, eval_ppl");
        JFreeChart chart = new JFreeChart(null, JFreeChart.DEFAULT_TITLE_FONT, plot, true);
        chart.setTitle(new TextTitle(title, new Font(Font.SANS_SERIF, Font.BOLD, 18)));
        chart.setBackgroundPaint(Color.WHITE);
        chart.getLegend().setItemFont(new Font(Font.SANS_SERIF, Font.PLAIN, 14));
        return chart.createBufferedImage(1100, 80 + 230 * panels);
    }

    private record Curve(TrainLog.Series series, String label, Color colour) {}

    private static Curve curve(TrainLog.Series series, String label, int rgb) {
        return series == null ? null : new Curve(series, label, new Color(rgb));
    }

    private static void addPlot(CombinedDomainXYPlot parent, String axis, Curve... curves) {
        XYSeriesCollection data = new XYSeriesCollection();
        XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, false);
        for (Curve c : curves) {
            if (c == null) continue;
            XYSeries xy = new XYSeries(c.label(), false, true);
            double[] steps = c.series().steps(), values = c.series().values();
            for (int i = 0; i < steps.length; i++) xy.add(steps[i], values[i]);
            int i = data.getSeriesCount();
            data.addSeries(xy);
            renderer.setSeriesPaint(i, c.colour());
            renderer.setSeriesStroke(i, new BasicStroke(2f));
            // sparse series (held-out evaluations) get markers so that a single point still shows
            renderer.setSeriesShapesVisible(i, steps.length <= 30);
        }
        if (data.getSeriesCount() == 0) return;
        NumberAxis y = new NumberAxis(axis);
        y.setAutoRangeIncludesZero(false);
        XYPlot p = new XYPlot(data, null, y, renderer);
        p.setBackgroundPaint(Color.WHITE);
        p.setDomainGridlinePaint(GRID);
        p.setRangeGridlinePaint(GRID);
        parent.add(p);
    }

    private static TrainLog.Series complement(TrainLog.Series keep) {
        if (keep == null) return null;
        double[] v = new double[keep.values().length];
        for (int i = 0; i < v.length; i++) v[i] = 1 - keep.values()[i];
        return new TrainLog.Series(keep.name(), keep.steps(), v);
    }

    private static Graphics2D canvas(BufferedImage img) {
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, img.getWidth(), img.getHeight());
        return g;
    }

    private static final Font TITLE = new Font(Font.SANS_SERIF, Font.BOLD, 18);

    private static int titleWidth(String title) {
        BufferedImage probe = new BufferedImage(1, 1, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = probe.createGraphics();
        int w = g.getFontMetrics(TITLE).stringWidth(title);
        g.dispose();
        return w;
    }

    private static void title(Graphics2D g, String title, int width, int y) {
        g.setFont(TITLE);
        g.setColor(INK);
        drawCentered(g, title, width / 2, y);
    }

    private static void legend(Graphics2D g, int x, int y) {
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
        g.setColor(RUNS);
        g.fillRect(x, y - 11, 14, 14);
        g.setColor(INK);
        g.drawString("module runs", x + 20, y);
        g.setColor(SKIPPED);
        g.fillRect(x + 130, y - 11, 14, 14);
        g.setColor(GRID);
        g.drawRect(x + 130, y - 11, 14, 14);
        g.setColor(INK);
        g.drawString("skipped", x + 150, y);
    }

    private static void colourBar(Graphics2D g, int x, int y, int w, int h, String label) {
        for (int i = 0; i < h; i++) {
            g.setColor(viridis(1 - (double) i / (h - 1)));
            g.fillRect(x, y + i, w, 1);
        }
        g.setColor(INK);
        g.drawRect(x, y, w, h);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        g.drawString("1.0", x + w + 6, y + 5);
        g.drawString("0.5", x + w + 6, y + h / 2 + 4);
        g.drawString("0.0", x + w + 6, y + h + 4);
        drawCentered(g, label, x + w / 2, y - 8);
    }

    /** A token's text as drawn: spaces as "·", newlines as "↵" (or "\n" where the font lacks it), at most 14 characters. */
    static String visible(String token, Font font) {
        String newline = font.canDisplay('\u21b5') ? "\u21b5" : "\\n";
        String s = token.replace(" ", "\u00b7").replace("\n", newline).replace("\t", "\\t").replace("\r", "\\r");
        return s.length() > 14 ? s.substring(0, 13) + "\u2026" : s;
    }

    static Color viridis(double v) {
        double t = Math.max(0, Math.min(1, v)) * (VIRIDIS.length - 1);
        int i = Math.min((int) t, VIRIDIS.length - 2);
        double f = t - i;
        int[] a = VIRIDIS[i], b = VIRIDIS[i + 1];
        return new Color((int) Math.round(a[0] + f * (b[0] - a[0])), (int) Math.round(a[1] + f * (b[1] - a[1])),
                (int) Math.round(a[2] + f * (b[2] - a[2])));
    }

    private static double luminance(Color c) {
        return (0.299 * c.getRed() + 0.587 * c.getGreen() + 0.114 * c.getBlue()) / 255;
    }

    private static void drawCentered(Graphics2D g, String s, int cx, int baseline) {
        g.drawString(s, cx - g.getFontMetrics().stringWidth(s) / 2, baseline);
    }

    private static void drawRight(Graphics2D g, String s, int right, int baseline) {
        g.drawString(s, right - g.getFontMetrics().stringWidth(s), baseline);
    }
}
