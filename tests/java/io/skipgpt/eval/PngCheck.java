package io.skipgpt.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import javax.imageio.ImageIO;

/** Checks a picture file: a PNG by its signature, of at least the given size, and not blank. */
public final class PngCheck {
    private static final byte[] SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    private PngCheck() {}

    public static BufferedImage assertPng(Path file, int minWidth, int minHeight) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        assertTrue(bytes.length > SIGNATURE.length, file + " is empty");
        assertArrayEquals(SIGNATURE, Arrays.copyOf(bytes, SIGNATURE.length), file + " is not a PNG");
        BufferedImage img = ImageIO.read(file.toFile());
        assertNotNull(img, file + " does not decode");
        assertTrue(img.getWidth() >= minWidth && img.getHeight() >= minHeight,
                file + " is " + img.getWidth() + "x" + img.getHeight() + ", expected at least " + minWidth + "x" + minHeight);
        // Not blank: luminance varies, and there are more colours than background and one ink.
        double sum = 0, sumSq = 0;
        Set<Integer> colours = new HashSet<>();
        long n = (long) img.getWidth() * img.getHeight();
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                int rgb = img.getRGB(x, y) & 0xffffff;
                colours.add(rgb);
                double lum = 0.299 * (rgb >> 16) + 0.587 * (rgb >> 8 & 0xff) + 0.114 * (rgb & 0xff);
                sum += lum;
                sumSq += lum * lum;
            }
        }
        double variance = sumSq / n - (sum / n) * (sum / n);
        assertTrue(variance > 100, file + ": pixel luminance variance " + variance + " — blank?");
        assertTrue(colours.size() > 8, file + ": only " + colours.size() + " colours");
        return img;
    }
}
