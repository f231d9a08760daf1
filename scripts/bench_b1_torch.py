#!/usr/bin/env python3
"""B1 anchor: PyTorch on the same gpt-mini step as `swiftspeed bench cpu-step` (run by hand, never in CI).

Prints one JSON line like the Swift bench. Usage:
  python3 scripts/bench_b1_torch.py [--threads 2] [--steps 10] [--no-optimizer]
"""
import argparse, json, math, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c, h, layers):
        super().__init__()
        self.h = h
        self.ln1, self.ln2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.qkv, self.proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.fc, self.mproj = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)
        for m in (self.qkv, self.fc):
            nn.init.normal_(m.weight, std=0.02); nn.init.zeros_(m.bias)
        for m in (self.proj, self.mproj):
            nn.init.normal_(m.weight, std=0.02 / math.sqrt(2 * layers)); nn.init.zeros_(m.bias)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.h, c // self.h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.mproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, v=8192, t=128, layers=4, h=4, c=256):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(v, c), nn.Embedding(t, c)
        nn.init.normal_(self.wte.weight, std=0.02); nn.init.normal_(self.wpe.weight, std=0.02)
        self.blocks = nn.ModuleList([Block(c, h, layers) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(c)

    def forward(self, ids, targets):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for b in self.blocks:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--no-optimizer", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1337)
    model = GPT()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    ids = torch.randint(0, 8192, (a.batch, 128)); targets = torch.randint(0, 8192, (a.batch, 128))
    times = []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        loss = model(ids, targets)
        loss.backward()
        if not a.no_optimizer:
            opt.step()
        opt.zero_grad(set_to_none=True)
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
    ms = sorted(times)[len(times) // 2] * 1000
    print(json.dumps({"case": "B1-cpu-step-torch", "torch": torch.__version__, "threads": a.threads,
                      "optimizer": "none" if a.no_optimizer else "adamw",
                      "params": sum(p.numel() for p in model.parameters()),
                      "ms_per_step": round(ms, 2), "tokens_per_s": round(a.batch * 128 / ms * 1000, 1)}))


if __name__ == "__main__":
    main()
