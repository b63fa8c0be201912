"""encchain: chains of VAEs trained on each other's samples, against a known truth.

The public surface, re-exported here so that ``import encchain as ec`` is all a
notebook needs:

* data: :class:`GridSpec`, :func:`make_grids`, :func:`grid_preset`;
  IDX files: :func:`read_idx`, :func:`write_idx`, :func:`read_raw_ubyte`;
* models and training: :func:`build_model`, :func:`train_vae`, :func:`generate`;
* chains: :class:`ChainConfig`, :func:`run_chain`, :func:`load_run`, :func:`preset`;
* measures: :func:`run_metrics` and the single measures;
* figures (``plot_*``), widgets (:class:`GenerationScrubber`, :func:`compare`)
  and :func:`write_report`.
"""

__version__ = "0.1.0"

from .chain import REGIMES, ChainConfig, Run, RunError, load_run, run_chain, training_set
from .grids import Binomial, GridSpec, Mode, Uniform, grid_preset, make_grids, render_blobs
from .idx import IDXError, read_idx, read_raw_ubyte, write_idx
from .metrics import (
    collapse_generation,
    decode_centers,
    difference,
    ground_truth_measures,
    occupancy,
    precision_recall,
    run_metrics,
    summary_lines,
    variability,
    variability_exact,
)
from .models import MODELS, VAE, build_model
from .plots import (
    plot_center_pmfs,
    plot_compare,
    plot_difference,
    plot_ground_truth,
    plot_losses,
    plot_marginals,
    plot_occupancy_grid,
    plot_samples,
    plot_variability,
)
from .presets import PRESETS, preset
from .report import write_report
from .train import TrainConfig, generate, train_vae
from .widgets import CompareScrubber, GenerationScrubber, compare

__all__ = [name for name in dir() if not name.startswith("_")]
