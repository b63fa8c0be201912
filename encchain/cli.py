"""Command line: ``encchain generate | chain | report | presets | demo``.

Run ``encchain COMMAND --help`` for every option. Bad arguments print one
line naming the problem and exit with status 2; a failing run exits 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main", "parse_set"]


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one clear line (no usage dump) and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def _axis(text: str):
    from .grids import Binomial, Uniform

    if text == "uniform":
        return Uniform()
    try:
        return Binomial(float(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1] or 'uniform', got {text!r} ({e})")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """Parse ``--set field=value`` items into ChainConfig fields, with types.

    Values are converted to the type of the field's default (int, float,
    str); ``grid=NAME`` takes a grid preset name; ``start=PATH`` a dataset;
    ``none`` clears an optional field.
    """
    from .chain import ChainConfig
    from .grids import grid_preset

    defaults = ChainConfig()
    names = {f.name for f in dataclasses.fields(ChainConfig)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set expects field=value, got {item!r}")
        if key not in names:
            raise ValueError(f"--set: unknown field {key!r}; fields are {', '.join(sorted(names))}")
        if raw.lower() == "none" and key in ("grid", "start"):
            out[key] = None
        elif key == "grid":
            out[key] = grid_preset(raw)
        elif key == "start":
            out[key] = raw
        else:
            kind = type(getattr(defaults, key))
            try:
                out[key] = kind(raw) if kind is not int else int(raw, 0)
            except ValueError:
                raise ValueError(f"--set {key}: expected {kind.__name__}, got {raw!r}") from None
    return out


def _cmd_generate(args: argparse.Namespace) -> int:
    from .grids import GridSpec, Mode, grid_preset, make_grids
    from .idx import write_idx

    spec = grid_preset(args.preset)
    changes: dict[str, Any] = {}
    if args.height or args.width or args.blob:
        changes.update(height=args.height or spec.height, width=args.width or spec.width,
                       blob_size=args.blob or spec.blob_size)
    if args.py is not None or args.px is not None:
        if len(spec.modes) != 1:
            raise ValueError("--py/--px set the axes of a single-mode grid; use --preset unimodal or uniform")
        m = spec.modes[0]
        changes["modes"] = (Mode(1.0, args.py or m.y, args.px or m.x),)
    spec = dataclasses.replace(spec, **changes) if changes else spec
    t0 = time.perf_counter()
    images = make_grids(spec, args.n, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_idx(out, images)
    print(f"wrote {out}: {images.shape[0]} grids of {spec.height} x {spec.width}, uint8, "
          f"preset {args.preset}, seed {args.seed} ({time.perf_counter() - t0:.2f} s)")
    return 0


def _chain_config(args: argparse.Namespace):
    from .presets import preset

    return preset(args.preset, quick=args.quick, **parse_set(args.set or []))


def _finished_models(path: Path) -> int:
    from .chain import RunError, load_run

    try:
        return len(load_run(path, verify=False)) - 1
    except RunError:
        return 0


def _cmd_chain(args: argparse.Namespace) -> int:
    from .chain import run_chain

    config = _chain_config(args)
    out = Path(args.out)
    done_before = _finished_models(out)
    t0 = time.perf_counter()
    run = run_chain(config, out, progress=not args.quiet)
    print(f"{run}: {len(run) - 1 - done_before} models finished in {time.perf_counter() - t0:.1f} s "
          f"this session; results in {run.path}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    outputs = write_report(args.run, progress=not args.quiet, precision_recall_samples=args.pr_samples)
    for line in outputs["summary"]:
        print(line)
    print(f"figures and metrics.csv written to {outputs['folder']}")
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    from .chain import ChainConfig
    from .presets import PRESETS

    base = ChainConfig()
    for name, changes in PRESETS.items():
        desc = ", ".join(f"{k}={v.modes[0].y.to_dict()['kind'] if k == 'grid' else v}" for k, v in changes.items())
        print(f"{name:32s} {desc or 'the default (' + base.model + ', replace)'}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .chain import run_chain
    from .presets import preset

    out = Path(args.out)
    config = preset("conv-baseline", quick=True)
    print(f"demo: a quick Conv chain ({config.generations} models, {config.n_samples} samples, "
          f"{config.epochs} epochs) in {out}")
    t0 = time.perf_counter()
    run_chain(config, out, progress=not args.quiet)
    print(f"chain done in {time.perf_counter() - t0:.1f} s")
    args.run, args.pr_samples = str(out), 1000
    return _cmd_report(args)


def build_parser() -> argparse.ArgumentParser:
    from .presets import PRESETS

    parser = _Parser(prog="encchain", description="Chains of VAEs trained on each other's samples.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    g = sub.add_parser("generate", help="write a synthetic grid dataset as an IDX file",
                       description="Draw grids with one blob whose centre follows a known distribution.")
    g.add_argument("--preset", default="unimodal", choices=["unimodal", "bimodal", "uniform"],
                   help="centre distribution (default: unimodal, y ~ Bin(23, .8), x ~ Bin(23, .3))")
    g.add_argument("--n", type=_positive_int, default=20_000, help="number of grids (default 20000)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--out", required=True, help="output path; a .gz suffix compresses (e.g. data/original.idx3-ubyte.gz)")
    g.add_argument("--height", type=_positive_int, help="grid height in pixels (default 24)")
    g.add_argument("--width", type=_positive_int, help="grid width in pixels (default 24)")
    g.add_argument("--blob", type=_positive_int, help="blob side in pixels, odd (default 3)")
    g.add_argument("--py", type=_axis, help="row distribution: a binomial p, or 'uniform' (single-mode presets)")
    g.add_argument("--px", type=_axis, help="column distribution: a binomial p, or 'uniform'")
    g.set_defaults(func=_cmd_generate)

    c = sub.add_parser("chain", help="run or resume a chain of VAEs",
                       description="Run a chain of VAEs; run again on the same --out to resume.")
    c.add_argument("--preset", default="conv-baseline", choices=sorted(PRESETS), metavar="NAME",
                   help="experiment (see `encchain presets`; default conv-baseline)")
    c.add_argument("--out", required=True, help="run folder (created, or resumed if it holds the same run)")
    c.add_argument("--quick", action="store_true", help="the quick scale (2000 samples, 3 epochs, 6 models)")
    c.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a ChainConfig field, e.g. --set kl_weight=0.3 --set seed=2 (repeatable)")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    c.set_defaults(func=_cmd_chain)

    r = sub.add_parser("report", help="metrics table (CSV) and figures (PNG) of a run",
                       description="Compute every metric of a run (cached) and write figures and metrics.csv into it.")
    r.add_argument("run", help="run folder")
    r.add_argument("--pr-samples", type=int, default=2000,
                   help="images per set for precision/recall (0 disables; default 2000)")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.set_defaults(func=_cmd_report)

    p = sub.add_parser("presets", help="list the named experiments")
    p.set_defaults(func=_cmd_presets)

    d = sub.add_parser("demo", help="a quick chain and its report, headless")
    d.add_argument("--out", default="data/runs/demo", help="run folder (default data/runs/demo)")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``encchain`` console script and ``python -m encchain``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, IndexError) as e:  # IDXError and RunError are ValueErrors
        print(f"encchain {args.command}: error: {e}", file=sys.stderr)
        return 1 if args.command in ("chain", "report", "demo") else 2
