"""Time one generation of the chain: encchain vs a loop in the original's style.

For every architecture this trains one VAE on the original dataset (20,000
unimodal 24 x 24 grids by default) with each of two loops, every run in a fresh
subprocess (so that no run inherits another's allocator or thread state), and
alternates them: reference, encchain, reference, encchain, ... (``--repeats``,
default 2). This machine's speed drifts by up to 2x within minutes (other
virtual machines share its caches and memory bus), so the best run of each
loop is compared and every pair's ratio is printed too.

- ``reference``: written plainly like the original: a ``Dataset`` whose
  ``__getitem__`` converts one uint8 image to a float tensor / 255, a
  ``DataLoader(batch_size=32, shuffle=True)``, plain ``torch.optim.Adam``
  (default arguments), ``loss.item()`` every step, PyTorch's own layers
  (:func:`original_layers`); it then decodes N latents in one call and writes
  them as the original did (gzip of the raw bytes);
- ``encchain``: :func:`encchain.train.train_vae` (its default, fast path), then
  :func:`encchain.train.generate` and :func:`encchain.idx.write_idx` (gzip IDX,
  atomic), as ``run_chain`` does.

Both start from the same initial weights (``torch.manual_seed(seed)`` before
``build_model``) and use the same loss, batch size, epochs, optimiser and lr.
One-time costs of a process (imports, including the ~2-3 s import of
``torch._dynamo`` that the first ``torch.optim.Adam`` triggers) are outside
both timers: a chain pays them once, not per generation.

It prints, per architecture: training seconds per generation and their ratio;
the whole generation (training + sampling N images + writing them); training
GFLOP/s (FLOPs from :func:`encchain.models.count_flops`) as a fraction of a
2048 x 2048 float32 ``torch.mm`` timed in the same run; with ``--profile S``,
where a step's time goes in each loop (torch.profiler over S steps); and the
quality of both runs: final training loss (mean per image, last epoch) and
variability of the generated set (mean L2 distance of N/2 random pairs,
pixels in [0, 1]).

Usage::

    python benchmarks/bench_chain.py                    # full scale, all four (~20 min on 2 cores)
    python benchmarks/bench_chain.py --archs conv       # one architecture
    python benchmarks/bench_chain.py --n 2000 --epochs 1  # quick
    python benchmarks/bench_chain.py --archs conv --profile 200  # + where the time goes, 200 steps each
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from timing import best_of

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
    torch.mm(a, b)  # warm-up
    return 2 * size**3 / best_of(lambda: torch.mm(a, b), reps) / 1e9


# --------------------------------------------------------------------------- #
# Profiling
# --------------------------------------------------------------------------- #


# Where a training step's time goes: profiler events grouped by what they do. Times are
# self CPU time of the listed ops, except the optimiser and the data loader, whose
# record_function ranges include their children.
PROFILE_GROUPS = (
    ("Linear-layer matmuls", ("aten::mm", "aten::addmm"), "self"),
    ("convolutions", ("aten::convolution_backward", "aten::_nnpack_spatial_convolution", "aten::mkldnn_convolution",
                      "aten::slow_conv_transpose2d", "aten::_slow_conv2d_forward", "aten::_slow_conv2d_backward",
                      "aten::bmm", "aten::baddbmm", "aten::stack"), "self"),
    ("Adam step + zero_grad", ("Optimizer.step#Adam.step", "Optimizer.zero_grad#Adam.zero_grad"), "total"),
    ("data loading", ("enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__",), "total"),
)


def profiled(run, steps: int) -> dict:
    """Profile ``run()`` (``steps`` training steps): per-step ms of each PROFILE_GROUPS entry, and the top ops."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        run()
        wall = time.perf_counter() - t0
    events = prof.key_averages()
    by_key = {e.key: e for e in events}
    groups = {}
    for name, keys, kind in PROFILE_GROUPS:
        us = sum(getattr(by_key[k], "self_cpu_time_total" if kind == "self" else "cpu_time_total")
                 for k in keys if k in by_key)
        groups[name] = us / 1e3 / steps
    groups["everything else"] = wall * 1e3 / steps - sum(groups.values())
    table = events.table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=45)
    return {"step_ms": wall * 1e3 / steps, "groups": groups, "table": table}


# --------------------------------------------------------------------------- #
# The reference loop, in the original's style
# --------------------------------------------------------------------------- #


def original_layers(model):
    """The model with PyTorch's own Conv2d kernel, as the original had (same weights).

    encchain's Conv and Asymm encoders use ``MatmulConv2d`` (a subclass of
    ``nn.Conv2d`` with the same parameters) on the CPU; the reference must not
    get that speed-up for free.
    """
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.__class__ = torch.nn.Conv2d
    return model


def run_reference(arch: str, images: np.ndarray, epochs: int, seed: int, device: str, profile: int = 0) -> dict:
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

    def epochs_of(loader, opt, epochs: int) -> float:
        running = 0.0
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
        return running

    torch.manual_seed(seed)
    model = original_layers(build_model(arch)).to(device)
    loader = DataLoader(Grids(images), batch_size=32, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    running = epochs_of(loader, opt, epochs)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.no_grad():
        z = torch.randn(len(images), model.latent_size).to(device)
        out = (model.decode(z) * 255).round().to(torch.uint8).cpu().numpy()[:, 0]
    gen_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp, gzip.open(Path(tmp) / "data-ubyte.gz", "wb") as f:
        f.write(out.tobytes())  # the original's header-less gzip
    write_s = time.perf_counter() - t0 - gen_s
    result = {"train_s": train_s, "gen_s": gen_s, "write_s": write_s, "final_loss": running / len(images),
              "variability": variability(out)}
    if profile:
        small = DataLoader(Grids(images[: profile * 32]), batch_size=32, shuffle=True)
        result["profile"] = profiled(lambda: epochs_of(small, opt, 1), profile)
    return result


def run_encchain(arch: str, images: np.ndarray, epochs: int, seed: int, device: str, profile: int) -> dict:
    import torch

    from encchain.idx import write_idx
    from encchain.models import build_model
    from encchain.train import TrainConfig, generate, resolve_device, train_vae

    dev = resolve_device(device)
    torch.manual_seed(seed)
    model = build_model(arch).to(dev)
    # The first torch.optim.Adam of a process imports torch._dynamo (~2-3 s here). A
    # chain pays it once, not per generation, and the reference builds its Adam before
    # its timer starts; pay it here too, before the timer.
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    t0 = time.perf_counter()
    hist = train_vae(model, images, TrainConfig(epochs=epochs), seed=seed, progress=False)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = generate(model, len(images), seed=seed)
    gen_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        write_idx(Path(tmp) / "data.idx3-ubyte.gz", out)  # as run_chain stores it (gzip IDX, atomic)
    write_s = time.perf_counter() - t0 - gen_s
    result = {"train_s": train_s, "gen_s": gen_s, "write_s": write_s, "final_loss": float(hist["total"][-1]),
              "variability": variability(out)}
    if profile:
        small = images[: profile * 32]
        result["profile"] = profiled(
            lambda: train_vae(model, small, TrainConfig(epochs=1), seed=seed, progress=False), profile
        )
    return result


# --------------------------------------------------------------------------- #
# Driver
# --------------------------------------------------------------------------- #


def worker(args: argparse.Namespace) -> None:
    import torch

    from encchain.models import build_model, count_flops

    images = make_dataset(args.n, seed=args.seed)
    if args.worker == "reference":
        res = run_reference(args.archs, images, args.epochs, args.seed, args.device, args.profile)
    else:
        res = run_encchain(args.archs, images, args.epochs, args.seed, args.device, args.profile)
    res["flops"] = count_flops(build_model(args.archs)) * args.n * args.epochs
    res["threads"] = torch.get_num_threads()
    print("RESULT " + json.dumps(res))


def spawn(kind: str, arch: str, args: argparse.Namespace, profile: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--archs", arch, "--n", str(args.n), "--epochs", str(args.epochs),
           "--seed", str(args.seed), "--device", args.device, "--profile", str(profile)]
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
    p.add_argument("--repeats", type=int, default=2,
                   help="runs of each loop, alternating reference and encchain; the best is reported (default 2)")
    p.add_argument("--profile", type=int, default=0,
                   help="also profile this many steps of each loop (first run) and print where the time goes")
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
        runs: dict[str, list[dict]] = {"reference": [], "encchain": []}
        for rep in range(args.repeats):  # reference, encchain, reference, encchain, ...
            for kind in ("reference", "encchain"):
                runs[kind].append(spawn(kind, arch, args, profile=args.profile if rep == 0 else 0))
            ref, enc = runs["reference"][-1], runs["encchain"][-1]
            print(f"  {arch} #{rep + 1}: reference {ref['train_s']:.1f} s, encchain {enc['train_s']:.1f} s "
                  f"({ref['train_s'] / enc['train_s']:.2f}x)", flush=True)
        if args.profile:
            for kind in ("reference", "encchain"):
                print(f"\n  {arch} {kind}: torch.profiler, {args.profile} steps\n{runs[kind][0]['profile']['table']}")
        rows.append((arch, runs["reference"], runs["encchain"]))
    peak_end = matmul_gflops()
    print(f"\nfloat32 matmul again at the end: {peak_end:.1f} GFLOP/s\n")

    def best(rs: list[dict], key: str) -> float:
        return min(r[key] for r in rs)

    def whole(r: dict) -> float:
        return r["train_s"] + r["gen_s"] + r["write_s"]

    print(f"training, best of {args.repeats} alternating runs each (s per generation); GFLOP/s of the encchain loop")
    print("| arch | reference s/gen | encchain s/gen | ratio | ratio of each pair | encchain GFLOP/s | of matmul peak | reference GFLOP/s |")
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for arch, refs, encs in rows:
        r, e = best(refs, "train_s"), best(encs, "train_s")
        pairs = ", ".join(f"{a['train_s'] / b['train_s']:.2f}" for a, b in zip(refs, encs))
        flops = encs[0]["flops"]
        print(f"| {arch} | {r:.1f} | {e:.1f} | {r / e:.2f}x | {pairs} | {flops / e / 1e9:.1f} | {flops / e / 1e9 / peak:.0%} "
              f"| {flops / r / 1e9:.1f} |")
    print(f"\nwhole generation = train + sample {args.n} + write them (reference: one decode, header-less gzip; "
          "encchain: generate(), gzip IDX written atomically)")
    print("| arch | reference s | encchain s | ratio | reference sample+write s | encchain sample+write s |")
    print("|---|---:|---:|---:|---:|---:|")
    for arch, refs, encs in rows:
        r, e = min(whole(x) for x in refs), min(whole(x) for x in encs)
        sw_r = min(x["gen_s"] + x["write_s"] for x in refs)
        sw_e = min(x["gen_s"] + x["write_s"] for x in encs)
        print(f"| {arch} | {r:.1f} | {e:.1f} | {r / e:.2f}x | {sw_r:.2f} | {sw_e:.2f} |")
    if args.profile:
        print(f"\nwhere a step's time goes (ms per step, torch.profiler over {args.profile} steps; the profiler adds overhead)")
        names = [g[0] for g in PROFILE_GROUPS] + ["everything else"]
        print("| arch | loop | step | " + " | ".join(names) + " |")
        print("|---|---|---:|" + "---:|" * len(names))
        for arch, refs, encs in rows:
            for kind, r in (("reference", refs[0]), ("encchain", encs[0])):
                pr = r["profile"]
                print(f"| {arch} | {kind} | {pr['step_ms']:.2f} | " + " | ".join(f"{pr['groups'][n]:.2f}" for n in names) + " |")
    print("\nquality, same seed (final loss = mean per image over the last epoch; variability of the generated set;"
          " median over the runs)")
    print("| arch | final loss ref | final loss encchain | variability ref | variability encchain |")
    print("|---|---:|---:|---:|---:|")
    def med(rs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rs)

    for arch, refs, encs in rows:
        print(f"| {arch} | {med(refs, 'final_loss'):.3f} | {med(encs, 'final_loss'):.3f} "
              f"| {med(refs, 'variability'):.4f} | {med(encs, 'variability'):.4f} |")

if __name__ == "__main__":
    main()
