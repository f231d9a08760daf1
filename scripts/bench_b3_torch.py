# B3's same-call anchors: GPT-2 124M training steps in PyTorch, eager and torch.compile, on the machine's GPU.
# Same work as `swiftspeed bench gpu-step`: micro-batch 16, T 1024, bf16 autocast, fused AdamW (lr 3e-4, wd 0.1),
# clipping 1.0; median step time after warm-up, ending each step with a synchronisation; one JSON line per mode.
#
#   python3 scripts/bench_b3_torch.py                  # eager and compile on cuda
#   python3 scripts/bench_b3_torch.py --tiny --device cpu --modes eager   # a smoke test anywhere
import argparse, json, math, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.h = h
        self.ln_1, self.ln_2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.c_attn, self.c_proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.c_fc, self.mlp_proj = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

    def forward(self, x):  # [B, T, C]
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.h, c // self.h).transpose(1, 2) for z in (q, k, v))  # [B, H, T, D]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, c)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, layers, heads, c, t, vocab):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, c), nn.Embedding(t, c)
        self.blocks = nn.ModuleList(Block(c, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(c)
        self.lm_head = nn.Linear(c, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as GPT-2
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith(("c_proj.weight", "mlp_proj.weight")) else 0.02
                nn.init.normal_(p, std=std)

    def forward(self, idx, targets):  # idx, targets [B, T]
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for blk in self.blocks:
            x = blk(x)
        logits = self.lm_head(self.ln_f(x))  # [B, T, V]
        return F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.view(-1))


def run(mode, args):
    torch.manual_seed(1337)
    dev = torch.device(args.device)
    layers, heads, c, t, vocab = (2, 2, 64, 64, 512) if args.tiny else (12, 12, 768, 1024, 50257)
    model = GPT(layers, heads, c, t, vocab).to(dev)
    n = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1, fused=dev.type == "cuda")
    step_model = torch.compile(model) if mode == "compile" else model
    g = torch.Generator(device="cpu").manual_seed(1)
    idx = torch.randint(0, vocab, (args.micro_batch, t + 1), generator=g).to(dev)
    x, y = idx[:, :-1].contiguous(), idx[:, 1:].contiguous()
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, loss = [], float("nan")
    for step in range(args.warmup + args.steps):
        sync()
        t0 = time.perf_counter()
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
            l = step_model(x, y)
        l.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        if step >= args.warmup:
            times.append(time.perf_counter() - t0)
        loss = l.item()
    ms = statistics.median(times) * 1000
    tokens_per_s = args.micro_batch * t / (ms / 1000)
    flops_per_token = 6 * n + 6 * layers * t * c  # the same count as bench gpu-step
    peak = round(torch.cuda.max_memory_allocated() / 2**30, 2) if dev.type == "cuda" else None
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(json.dumps({"case": "B3-torch", "mode": mode, "device": name, "torch": torch.__version__,
                      "micro_batch": args.micro_batch, "ms_per_step": round(ms, 2),
                      "tokens_per_s": round(tokens_per_s), "tflops": round(flops_per_token * tokens_per_s / 1e12, 1),
                      "peak_mem_gib": peak, "loss": round(loss, 4)}), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--modes", default="eager,compile")
    ap.add_argument("--micro-batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--tiny", action="store_true", help="a 2-layer model, for a smoke test")
    args = ap.parse_args()
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    for mode in args.modes.split(","):
        run(mode, args)
        if args.device == "cuda":
            torch.cuda.empty_cache()
