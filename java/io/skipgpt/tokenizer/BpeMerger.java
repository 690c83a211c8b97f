package io.skipgpt.tokenizer;

import java.util.PriorityQueue;

/**
 * The BPE merge loop shared by SentencePiece (merge priority = piece score) and Hugging Face (merge priority =
 * rank in the merges list): repeatedly merge the adjacent pair of symbols with the lowest priority, ties going to
 * the leftmost pair. Symbols live in a doubly linked list over their start index and candidates in a heap, so a
 * text of n symbols costs O(n log n) instead of the O(n^2) of rescanning after every merge.
 */
final class BpeMerger {
    /** The token two adjacent symbols merge into and the priority of that merge (lower merges first). */
    record Merge(int token, double priority) {}

    /** Looks up whether two adjacent tokens merge; null when they do not. */
    interface Rule {
        Merge find(int left, int right);
    }

    /**
     * A possible merge of the symbols starting at {@code left} and {@code right}; stale once either symbol has
     * changed since (its version moved on).
     */
    private record Candidate(int left, int right, int leftVersion, int rightVersion, int token, double priority)
            implements Comparable<Candidate> {
        @Override
        public int compareTo(Candidate o) {
            int c = Double.compare(priority, o.priority);
            return c != 0 ? c : Integer.compare(left, o.left);
        }
    }

    private BpeMerger() {}

    /** Merges {@code tokens} (the initial symbols, one token each) as far as {@code rule} allows. */
    static int[] merge(int[] tokens, Rule rule) {
        int n = tokens.length;
        if (n < 2) return tokens.clone();
        int[] token = tokens.clone();
        int[] prev = new int[n];
        int[] next = new int[n];
        int[] version = new int[n];
        for (int i = 0; i < n; i++) {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        PriorityQueue<Candidate> queue = new PriorityQueue<>();
        for (int i = 0; i + 1 < n; i++) offer(queue, rule, token, version, i, i + 1);
        int alive = n;
        while (!queue.isEmpty()) {
            Candidate c = queue.poll();
            int l = c.left, r = c.right;
            if (version[l] != c.leftVersion || version[r] != c.rightVersion || next[l] != r) continue;
            // The merged symbol keeps the left start index; the right symbol leaves the list.
            token[l] = c.token;
            version[l]++;
            version[r]++;
            next[l] = next[r];
            if (next[r] >= 0) prev[next[r]] = l;
            alive--;
            if (prev[l] >= 0) offer(queue, rule, token, version, prev[l], l);
            if (next[l] >= 0) offer(queue, rule, token, version, l, next[l]);
        }
        int[] out = new int[alive];
        for (int i = 0, k = 0; i >= 0; i = next[i]) out[k++] = token[i];
        return out;
    }

    private static void offer(PriorityQueue<Candidate> queue, Rule rule, int[] token, int[] version, int l, int r) {
        Merge m = rule.find(token[l], token[r]);
        if (m != null) queue.add(new Candidate(l, r, version[l], version[r], m.token(), m.priority()));
    }
}
