#!/usr/bin/env python3
"""PyTorch baseline for the GPU results: prefill and batched decode of LLaMA-shaped models in bf16.

Why it exists: the Java figures (dense and routed SkipGPT through CudaBackend) need a side-by-side reference
measured on the same machine in the same run, or a reader cannot tell good from bad. This times what a PyTorch
user would get for the same shapes: a randomly initialised LLaMA-2-7B and LLaMA-3-8B with only a few layers
(every layer costs the same, so per-layer figures scale), bf16 weights and activations, measuring
  (a) prefill: one sequence of --prefill tokens, logits of the last position only (what generation needs);
  (b) batched decode: --batch sequences, each with a --context-token KV cache, time per decode step (one new
      token for every sequence).
With transformers importable it runs LlamaForCausalLM (sdpa attention, the model's own KV cache); otherwise a
compact hand-written LLaMA in plain PyTorch with the same shapes (RMSNorm, RoPE, GQA through
F.scaled_dot_product_attention, SwiGLU, a preallocated KV cache). The table says which ran.

Timing: a device synchronisation before and after each timed call, wall clock between them (so launch overhead
counts, as it does for the Java figures), after warm-up calls; the median of --reps calls is reported.
Prints a markdown table; --json PATH also writes one JSON object per model. Exits 0 with one "skipped: ..." line
where torch or the device is unavailable.

  python3 tests/gpu/torch_baseline.py --json OUT/torch-baseline.jsonl
  python3 tests/gpu/torch_baseline.py --device cpu --layers 1 --prefill 64 --batch 2 --context 16
"""
import argparse
import json
import statistics
import sys
import time

# name: (dim, heads, kv heads, hidden, vocab, rope theta); head dim 128, RMSNorm eps 1e-5, untied output head.
# (theta shapes the values only, not the time.)
SHAPES = {
    "llama2-7b": (4096, 32, 32, 11008, 32000, 10000.0),
    "llama3-8b": (4096, 32, 8, 14336, 128256, 500000.0),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(SHAPES), help="comma-separated, of: " + ", ".join(SHAPES))
    p.add_argument("--layers", type=int, default=4, help="decoder layers (default 4)")
    p.add_argument("--prefill", type=int, default=4096, help="prefill tokens, one sequence (default 4096)")
    p.add_argument("--batch", type=int, default=16, help="decode batch: sequences per step (default 16)")
    p.add_argument("--context", type=int, default=512, help="KV cache length of each sequence (default 512)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls before timing (default 3)")
    p.add_argument("--reps", type=int, default=7, help="timed calls; the median is reported (default 7)")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--impl", choices=["auto", "transformers", "torch"], default="auto",
                   help="auto: transformers when importable, else the hand-written model")
    p.add_argument("--sdpa", choices=["auto", "no-cudnn"], default="no-cudnn",
                   help="attention kernels torch may pick: no-cudnn (default: flash, memory-efficient, math) or auto (all):"
                        " cuDNN's attention plans a graph per new shape, and a decode step's key length is new each"
                        " step")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON lines here")
    args = p.parse_args()
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in SHAPES]
    if unknown:
        p.error("unknown model(s) %s; known: %s" % (", ".join(unknown), ", ".join(SHAPES)))
    if min(args.layers, args.prefill, args.batch, args.context, args.reps) < 1 or args.warmup < 0:
        p.error("--layers, --prefill, --batch, --context and --reps must be positive, --warmup not negative")
    return args


def main():
    args = parse_args()
    try:
        import torch
    except ImportError as e:
        print("skipped: torch is not installed (%s)" % e)
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("skipped: CUDA is not available to torch %s (built for CUDA %s)" % (torch.__version__, torch.version.cuda))
        return 0
    device = torch.device(args.device)
    torch.manual_seed(0)
    if device.type == "cuda":
        where = "%s, torch %s, CUDA %s" % (torch.cuda.get_device_name(device), torch.__version__, torch.version.cuda)
    else:
        where = "CPU, torch %s" % torch.__version__

    notes = []  # why the hand-written model ran in place of transformers: under the table, and on stderr at once

    def note(text):
        notes.append(text)
        print("note: " + text, file=sys.stderr)
        return text

    transformers, missing = None, None
    if args.impl != "torch":
        try:
            import transformers
        except ImportError as e:
            if args.impl == "transformers":
                raise
            missing = note("transformers is not importable (%s): using the hand-written model" % e)

    rows = []
    for name in args.models:
        row, why = None, missing
        if transformers is not None:
            try:
                row = measure(args, name, device, HfRunner(transformers, SHAPES[name], args, device))
            except Exception as e:  # an API this script does not know: the hand-written model still gives figures
                if args.impl == "transformers":
                    raise
                why = note("%s through transformers failed (%s: %s): using the hand-written model"
                           % (name, type(e).__name__, e))
            release(device)
        if row is None:
            row = measure(args, name, device, HandRunner(SHAPES[name], args, device))
            release(device)
        row["device"] = where
        if why:
            row["note"] = why
        rows.append(row)

    print("PyTorch baseline on %s: bf16, random weights, layers: %d, median of %d timed calls after %d warm-ups,"
          " attention kernels: %s" % (where, args.layers, args.reps, args.warmup, args.sdpa))
    print()
    print("| model shape | layers | implementation | prefill tokens | prefill ms | prefill tokens/s "
          "| decode batch x context | decode ms/step | decode tokens/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %d | %s | %d | %.2f | %.0f | %d x %d | %.3f | %.0f |" % (
            r["model"], r["layers"], r["implementation"], r["prefill_tokens"], r["prefill_ms"],
            r["prefill_tokens_per_s"], r["decode_batch"], r["decode_context"], r["decode_ms_per_step"],
            r["decode_tokens_per_s"]))
    for text in notes:
        print()
        print("note: " + text)
    if args.json:
        with open(args.json, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    return 0


def measure(args, name, device, runner):
    """Times prefill and decode with one runner; a row of figures."""
    import torch

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    vocab = SHAPES[name][4]
    with torch.inference_mode(), attention_kernels(args.sdpa):
        prompt = torch.randint(0, vocab, (1, args.prefill), device=device)
        prefill_ms = median_ms(lambda: runner.prefill(prompt), args.warmup, args.reps, sync)

        context = torch.randint(0, vocab, (args.batch, args.context), device=device)
        runner.start_decode(context, steps=args.warmup + args.reps)
        step_ids = torch.randint(0, vocab, (args.batch, 1), device=device)
        decode_ms = median_ms(lambda: runner.decode_step(step_ids), args.warmup, args.reps, sync)
        runner.end_decode()
    dim, heads, kv_heads, hidden, vocab, theta = SHAPES[name]
    return {
        "model": name, "layers": args.layers, "implementation": runner.description, "kind": runner.kind,
        "dim": dim, "heads": heads, "kv_heads": kv_heads, "hidden": hidden, "vocab": vocab, "rope_theta": theta,
        "dtype": "bf16",
        "prefill_tokens": args.prefill, "prefill_ms": prefill_ms, "prefill_tokens_per_s": args.prefill / prefill_ms * 1e3,
        "decode_batch": args.batch, "decode_context": args.context, "decode_ms_per_step": decode_ms,
        "decode_tokens_per_s": args.batch / decode_ms * 1e3,
        "warmup": args.warmup, "reps": args.reps, "sdpa": args.sdpa,
    }


def attention_kernels(choice):
    """A context in which scaled_dot_product_attention may use only the kernels --sdpa allows."""
    import contextlib

    if choice == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def median_ms(call, warmup, reps, sync):
    for _ in range(warmup):
        call()
    times = []
    for _ in range(reps):
        sync()
        start = time.perf_counter()
        call()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def release(device):
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


class HfRunner:
    """transformers' LlamaForCausalLM with sdpa attention and its own KV cache (whatever this version returns)."""

    kind = "transformers"

    def __init__(self, transformers, shape, args, device):
        import torch

        dim, heads, kv_heads, hidden, vocab, theta = shape
        config = transformers.LlamaConfig(
            vocab_size=vocab, hidden_size=dim, intermediate_size=hidden, num_hidden_layers=args.layers,
            num_attention_heads=heads, num_key_value_heads=kv_heads, rope_theta=theta, rms_norm_eps=1e-5,
            max_position_embeddings=max(args.prefill, args.context + args.warmup + args.reps),
            tie_word_embeddings=False, attn_implementation="sdpa")
        try:
            config._attn_implementation = "sdpa"  # versions before the constructor argument take it only here
        except AttributeError:
            pass  # a read-only property: the constructor argument set it
        # Made in bf16 on the device, as from_pretrained(torch_dtype=bf16) makes it: a CPU init of billions of
        # parameters would take minutes, and model.to(bf16) would also round the fp32 RoPE frequencies.
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.bfloat16)
        try:
            with device:
                self.model = transformers.LlamaForCausalLM(config).eval()
        finally:
            torch.set_default_dtype(previous)
        self.description = "transformers %s LlamaForCausalLM (%s)" % (
            transformers.__version__, self.model.config._attn_implementation)
        self.past = None

    def forward(self, ids, past):
        # The decoder, then the head on the last position only: full-sequence logits would add a
        # [tokens, vocab] product that generation does not need.
        out = self.model.model(input_ids=ids, past_key_values=past, use_cache=True)
        return self.model.lm_head(out.last_hidden_state[:, -1, :]), out.past_key_values

    def prefill(self, ids):
        return self.forward(ids, None)[0]

    def start_decode(self, context, steps):
        self.past = self.forward(context, None)[1]

    def decode_step(self, ids):
        logits, self.past = self.forward(ids, self.past)
        return logits

    def end_decode(self):
        self.past = None


class HandRunner:
    """The hand-written LLaMA below, with a KV cache preallocated for the whole run."""

    kind = "torch"

    def __init__(self, shape, args, device):
        import torch

        self.model = hand_llama(shape, args.layers, device, torch.bfloat16)
        self.description = "hand-written PyTorch (sdpa%s)" % (", native GQA" if gqa_native() else "")
        self.cache, self.position = None, 0

    def prefill(self, ids):
        if self.cache is None or self.cache[0][0].shape[0] != ids.shape[0] or self.cache[0][0].shape[2] < ids.shape[1]:
            self.cache = self.model.new_cache(ids.shape[0], ids.shape[1])
        return self.model(ids, self.cache, 0)

    def start_decode(self, context, steps):
        self.cache = self.model.new_cache(context.shape[0], context.shape[1] + steps)
        self.model(context, self.cache, 0)
        self.position = context.shape[1]

    def decode_step(self, ids):
        logits = self.model(ids, self.cache, self.position)
        self.position += 1
        return logits

    def end_decode(self):
        self.cache = None


_GQA_NATIVE = None


def gqa_native():
    """Whether F.scaled_dot_product_attention takes enable_gqa (torch 2.5+), so kv heads need no copying."""
    global _GQA_NATIVE
    if _GQA_NATIVE is None:
        import torch
        import torch.nn.functional as F

        q, kv = torch.zeros(1, 2, 1, 8), torch.zeros(1, 1, 1, 8)
        try:
            F.scaled_dot_product_attention(q, kv, kv, enable_gqa=True)
            _GQA_NATIVE = True
        except TypeError:
            _GQA_NATIVE = False
    return _GQA_NATIVE


def hand_llama(shape, layers, device, dtype):
    """A LLaMA decoder of the given shape, weights ~ N(0, 0.02) and norms 1, built on the device in dtype."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    dim, heads, kv_heads, hidden, vocab, theta = shape
    head_dim = dim // heads
    made = {"device": device, "dtype": dtype}

    def linear(n_in, n_out):
        return nn.Linear(n_in, n_out, bias=False, **made)

    class RMSNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(dim, **made))

        def forward(self, x):  # in fp32, as transformers does
            xf = x.float()
            return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(x.dtype) * self.weight

    def rope(x, cos, sin):  # x[B, H, T, head_dim], rotate-half pairs (i, i + head_dim/2)
        x1, x2 = x.chunk(2, dim=-1)
        return x * cos + torch.cat((-x2, x1), dim=-1) * sin

    def attend(q, k, v, causal):  # q[B, H, T, hd], k and v[B, Hkv, S, hd]
        if kv_heads == heads:
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        if gqa_native():
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
        group = heads // kv_heads
        return F.scaled_dot_product_attention(q, k.repeat_interleave(group, 1), v.repeat_interleave(group, 1),
                                              is_causal=causal)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn_norm, self.mlp_norm = RMSNorm(), RMSNorm()
            self.wq, self.wk, self.wv = linear(dim, dim), linear(dim, kv_heads * head_dim), linear(dim, kv_heads * head_dim)
            self.wo = linear(dim, dim)
            self.w_gate, self.w_up, self.w_down = linear(dim, hidden), linear(dim, hidden), linear(hidden, dim)

        def forward(self, x, cos, sin, cache_k, cache_v, start):
            b, t, _ = x.shape
            h = self.attn_norm(x)
            q = self.wq(h).view(b, t, heads, head_dim).transpose(1, 2)
            k = self.wk(h).view(b, t, kv_heads, head_dim).transpose(1, 2)
            v = self.wv(h).view(b, t, kv_heads, head_dim).transpose(1, 2)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            cache_k[:, :, start:start + t] = k
            cache_v[:, :, start:start + t] = v
            # sdpa's causal mask is aligned top-left: right for a prefill from 0, and a single new row sees all
            a = attend(q, cache_k[:, :, :start + t], cache_v[:, :, :start + t], causal=t > 1)
            x = x + self.wo(a.transpose(1, 2).reshape(b, t, dim))
            h = self.mlp_norm(x)
            return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))

    class Llama(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, dim, **made)
            self.blocks = nn.ModuleList(Block() for _ in range(layers))
            self.norm = RMSNorm()
            self.head = linear(dim, vocab)
            self.register_buffer("inv_freq", 1.0 / theta ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim))

        def new_cache(self, batch, length):
            return [(torch.empty(batch, kv_heads, length, head_dim, **made),
                     torch.empty(batch, kv_heads, length, head_dim, **made)) for _ in self.blocks]

        def forward(self, ids, cache, start):  # ids[B, T] at positions start.. -> logits of the last one [B, vocab]
            b, t = ids.shape
            assert start == 0 or t == 1, "a prefill starts at 0; later calls add one token"
            angles = torch.outer(torch.arange(start, start + t, device=device).float(), self.inv_freq)
            angles = torch.cat((angles, angles), dim=-1)
            cos, sin = angles.cos().to(dtype), angles.sin().to(dtype)
            x = self.embed(ids)
            for block, (cache_k, cache_v) in zip(self.blocks, cache):
                x = block(x, cos, sin, cache_k, cache_v, start)
            return self.head(self.norm(x[:, -1, :]))

    model = Llama().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                m.weight.normal_(0.0, 0.02)
    return model


if __name__ == "__main__":
    sys.exit(main())
