"""Time one generation of the chain: encchain's train_vae vs a loop in the original's style.

For every architecture this trains one VAE on the original dataset (20,000
unimodal 24 x 24 grids by default) twice, each time in a fresh subprocess so
that neither run inherits the other's allocator or thread state:

- ``reference``: written plainly like the original: a ``Dataset`` whose
  ``__getitem__`` converts one uint8 image to a float tensor / 255, a
  ``DataLoader(batch_size=32, shuffle=True)``, plain ``torch.optim.Adam``
  (default arguments), ``loss.item()`` every step;
- ``encchain``: :func:`encchain.train.train_vae` (its default, fast path).

Both start from the same initial weights (``torch.manual_seed(seed)`` before
``build_model``) and use the same loss, batch size, epochs, optimiser and lr.
Each run then samples N images (reference: one ``decode`` of N latents;
encchain: :func:`encchain.train.generate`) and the quality of the two runs is
compared: final training loss (mean per image, last epoch) and variability of
the generated set (mean L2 distance of N/2 random pairs, pixels in [0, 1]).

It also times a 2048 x 2048 float32 ``torch.mm`` (the machine's matmul rate,
measured in this run) and reports the training GFLOP/s of each loop as a
fraction of it (FLOPs from :func:`encchain.models.count_flops`).

Usage::

    python benchmarks/bench_chain.py                    # full scale, all four (~15+ min on 2 cores)
    python benchmarks/bench_chain.py --archs conv       # one architecture
    python benchmarks/bench_chain.py --n 2000 --epochs 1  # quick
    python benchmarks/bench_chain.py --archs conv --profile 200  # + torch.profiler summary of 200 steps
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ARCHS = ("conv", "fc1", "fc2", "asymm")


# --------------------------------------------------------------------------- #
# Data: the original unimodal dataset (y ~ Bin(23, 0.8), x ~ Bin(23, 0.3), 3x3 blob)
# --------------------------------------------------------------------------- #


def make_dataset(n: int, seed: int = 0, size: int = 24) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cy = rng.binomial(size - 1, 0.8, n)
    cx = rng.binomial(size - 1, 0.3, n)
    rows = np.arange(size)
    my = np.abs(rows[None, :] - cy[:, None]) <= 1  # (n, size)
    mx = np.abs(rows[None, :] - cx[:, None]) <= 1
    return (my[:, :, None] & mx[:, None, :]).astype(np.uint8) * 255


def variability(images: np.ndarray, seed: int = 0) -> float:
    """Mean L2 distance of N/2 random disjoint pairs, pixels in [0, 1]."""
    x = images.reshape(len(images), -1).astype(np.float64) / 255.0
    perm = np.random.default_rng(seed).permutation(len(x))
    half = len(x) // 2
    return float(np.linalg.norm(x[perm[:half]] - x[perm[half : 2 * half]], axis=1).mean())


def matmul_gflops(size: int = 2048, reps: int = 5) -> float:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


# --------------------------------------------------------------------------- #
# The reference loop, in the original's style
# --------------------------------------------------------------------------- #


def run_reference(arch: str, images: np.ndarray, epochs: int, seed: int, device: str) -> dict:
    import torch
    from torch.utils.data import DataLoader, Dataset

    from encchain.models import build_model

    class Grids(Dataset):
        def __init__(self, arr):
            self.arr = arr

        def __len__(self):
            return len(self.arr)

        def __getitem__(self, i):
            return torch.from_numpy(self.arr[i]).float().unsqueeze(0) / 255.0

    torch.manual_seed(seed)
    model = build_model(arch).to(device)
    loader = DataLoader(Grids(images), batch_size=32, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for _epoch in range(epochs):
        running = 0.0
        for x in loader:
            x = x.to(device)
            x_hat, mu, logvar = model(x)
            recon = ((x_hat - x) ** 2).sum()
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = recon + kl
            opt.zero_grad()
            loss.backward()
            opt.step()
            running += loss.item()
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.no_grad():
        z = torch.randn(len(images), model.latent_size).to(device)
        out = (model.decode(z) * 255).round().to(torch.uint8).cpu().numpy()[:, 0]
    gen_s = time.perf_counter() - t0
    return {"train_s": train_s, "gen_s": gen_s, "final_loss": running / len(images), "variability": variability(out)}


def run_encchain(arch: str, images: np.ndarray, epochs: int, seed: int, device: str, profile: int) -> dict:
    import torch

    from encchain.models import build_model
    from encchain.train import TrainConfig, generate, resolve_device, train_vae

    dev = resolve_device(device)
    torch.manual_seed(seed)
    model = build_model(arch).to(dev)
    t0 = time.perf_counter()
    hist = train_vae(model, images, TrainConfig(epochs=epochs), seed=seed, progress=False)
    train_s = time.perf_counter() - t0
    generate(model, 1024, seed=seed)  # warm-up
    t0 = time.perf_counter()
    out = generate(model, len(images), seed=seed)
    gen_s = time.perf_counter() - t0
    result = {"train_s": train_s, "gen_s": gen_s, "final_loss": float(hist["total"][-1]), "variability": variability(out)}
    if profile:
        from torch.profiler import ProfilerActivity, profile as torch_profile

        small = images[: profile * 32]
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            train_vae(model, small, TrainConfig(epochs=1), seed=seed, progress=False)
        result["profile"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=45)
    return result


# --------------------------------------------------------------------------- #
# Driver
# --------------------------------------------------------------------------- #


def worker(args: argparse.Namespace) -> None:
    import torch

    from encchain.models import build_model, count_flops

    images = make_dataset(args.n, seed=args.seed)
    if args.worker == "reference":
        res = run_reference(args.archs, images, args.epochs, args.seed, args.device)
    else:
        res = run_encchain(args.archs, images, args.epochs, args.seed, args.device, args.profile)
    res["flops"] = count_flops(build_model(args.archs)) * args.n * args.epochs
    res["threads"] = torch.get_num_threads()
    print("RESULT " + json.dumps(res))


def spawn(kind: str, arch: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--archs", arch, "--n", str(args.n), "--epochs", str(args.epochs),
           "--seed", str(args.seed), "--device", args.device, "--profile", str(args.profile if kind == "encchain" else 0)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{kind} {arch} failed")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def machine() -> str:
    import torch

    model = platform.processor() or "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), model)
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20_000, help="training images per generation (default 20000)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--archs", default=",".join(ARCHS), help="comma-separated subset of " + ",".join(ARCHS))
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (default cpu)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", type=int, default=0, help="also profile this many encchain steps and print a summary")
    p.add_argument("--worker", choices=("reference", "encchain"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return

    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    peak = matmul_gflops()
    print(f"machine: {machine()}")
    print(f"float32 matmul (2048^3 torch.mm, best of 5): {peak:.1f} GFLOP/s")
    print(f"settings: n={args.n}, epochs={args.epochs}, batch 32, latent 8, Adam lr 1e-3, seed {args.seed}, device {args.device}\n")
    rows = []
    for arch in archs:
        ref = spawn("reference", arch, args)
        enc = spawn("encchain", arch, args)
        rows.append((arch, ref, enc))
        gf = enc["flops"] / enc["train_s"] / 1e9
        print(f"  {arch}: reference {ref['train_s']:.1f} s, encchain {enc['train_s']:.1f} s "
              f"({ref['train_s'] / enc['train_s']:.2f}x, {gf:.1f} GFLOP/s)", flush=True)
        if "profile" in enc:
            print(enc["profile"])
    peak_end = matmul_gflops()
    print(f"\nfloat32 matmul again at the end: {peak_end:.1f} GFLOP/s\n")

    print("| arch | reference s/gen | encchain s/gen | ratio | encchain GFLOP/s | of matmul peak | reference GFLOP/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for arch, ref, enc in rows:
        gf, gf_ref = enc["flops"] / enc["train_s"] / 1e9, ref["flops"] / ref["train_s"] / 1e9
        print(f"| {arch} | {ref['train_s']:.1f} | {enc['train_s']:.1f} | {ref['train_s'] / enc['train_s']:.2f}x "
              f"| {gf:.1f} | {gf / peak:.0%} | {gf_ref:.1f} |")
    print(f"\nsampling {args.n} images (s): reference one-shot decode / encchain generate()")
    print("| arch | reference | generate() |")
    print("|---|---:|---:|")
    for arch, ref, enc in rows:
        print(f"| {arch} | {ref['gen_s']:.2f} | {enc['gen_s']:.2f} |")
    print("\nquality, same seed (final loss = mean per image over the last epoch; variability of the generated set)")
    print("| arch | final loss ref | final loss encchain | variability ref | variability encchain |")
    print("|---|---:|---:|---:|---:|")
    for arch, ref, enc in rows:
        print(f"| {arch} | {ref['final_loss']:.3f} | {enc['final_loss']:.3f} | {ref['variability']:.4f} | {enc['variability']:.4f} |")


if __name__ == "__main__":
    main()
