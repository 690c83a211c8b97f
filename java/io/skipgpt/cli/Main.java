package io.skipgpt.cli;

public final class Main {
    public static void main(String[] args) {
        System.out.println(io.skipgpt.tensor.GpuProbe.probe());
    }
}
