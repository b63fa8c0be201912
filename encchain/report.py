"""One report per run: the metrics table as CSV and every figure as PNG.

``encchain report RUN`` calls :func:`write_report`. Metrics come from
:func:`encchain.metrics.run_metrics`, which caches them in the run folder, so
a second report of an unchanged run only redraws the figures.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes

__all__ = ["write_report", "save_figure", "REPORT_FIGURES"]

#: file name -> what the figure shows
REPORT_FIGURES = {
    "variability.png": "variability along the chain (sampled and exact)",
    "difference.png": "occupancy-map difference to the previous generation and to the original",
    "occupancy.png": "occupancy heat maps over generations",
    "ground_truth.png": "validity, centre-distribution distance, coverage, centre mean and spread",
    "samples_first.png": "random samples of generation 0 (the original data)",
    "samples_last.png": "random samples of the last generation",
    "marginals_last.png": "decoded centre marginals of the last generation against the truth",
    "losses.png": "training loss terms of every model",
}


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Render a matplotlib Figure to PNG atomically, then close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def write_report(
    run_dir: str | os.PathLike | Any,
    *,
    out_dir: str | os.PathLike | None = None,
    precision_recall_samples: int = 2000,
    progress: bool = True,
) -> dict[str, Any]:
    """Compute a run's metrics and write ``metrics.csv`` and the figures.

    Parameters
    ----------
    run_dir : path or Run
        The run (loaded and checksum-verified if a path).
    out_dir : path, optional
        Where to write; default ``RUN/report``.
    precision_recall_samples : int
        Images per set for precision/recall (0 disables).
    progress : bool
        Progress bar while computing metrics.

    Returns
    -------
    dict with ``folder`` (Path), ``table`` (the metrics), ``files`` (written
    paths) and ``summary`` (lines of text: per generation variability,
    validity, centre TV).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)  # headless: no window even if a GUI backend is default

    from . import plots
    from .chain import Run, load_run
    from .metrics import metrics_to_csv, run_metrics, summary_lines

    run = run_dir if isinstance(run_dir, Run) else load_run(run_dir)
    folder = Path(out_dir) if out_dir is not None else run.path / "report"
    folder.mkdir(parents=True, exist_ok=True)
    table = run_metrics(run, precision_recall_samples=precision_recall_samples, progress=progress)
    files = [metrics_to_csv(table, folder / "metrics.csv")]
    last = len(run) - 1
    figures = {
        "variability.png": lambda: plots.plot_variability(table),
        "difference.png": lambda: plots.plot_difference(table),
        "occupancy.png": lambda: plots.plot_occupancy_grid(run),
        "ground_truth.png": lambda: plots.plot_ground_truth(table),
        "samples_first.png": lambda: plots.plot_samples(run.images(0), title="generation 0 (original data)"),
        "samples_last.png": lambda: plots.plot_samples(run.images(last), title=f"generation {last}"),
        "losses.png": lambda: plots.plot_losses(run) if last >= 1 else None,
    }
    if run.spec is not None:
        figures["marginals_last.png"] = lambda: plots.plot_marginals(
            run.images(last), run.spec, title=f"generation {last}: decoded centres vs truth")
    for name, make in figures.items():
        fig = make()
        if fig is not None:
            files.append(save_figure(fig, folder / name))
    return {"folder": folder, "table": table, "files": files, "summary": summary_lines(table)}
