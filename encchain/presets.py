"""The original system's experiments, by name, plus the new data regimes.

Each preset is a :class:`~encchain.chain.ChainConfig` at the original's scale
(20,000 samples, 5 epochs, batch 32, 20 models unless noted). ``quick=True``
gives the same science at a scale for demos and tests: 2,000 samples, 3
epochs, 6 models (10 for the long chain), about a minute on 2 CPU cores.

==================================  ==========================================
name                                change from the default (Conv, replace)
==================================  ==========================================
fc1, fc2, conv-baseline, asymm      the architecture
conv-unif                           both axes uniform
conv-bimodal                        the bimodal grid (2/3 + 1/3)
conv-lessregul                      lambda = 0.3
conv-varloss                        K = 10
conv-lessregul-varloss              lambda = 0.7, K = 10
conv-lessregul-varloss-denoise      lambda = 0.7, K = 10, t = 0.05
conv-denoise                        t = 0.7
conv-std                            delta = 0.4
conv-std-denoise                    delta = 0.4, t = 0.05
conv-std-denoise-longchain          delta = 0.7, t = 0.05, 50 models
conv-accumulate                     regime accumulate (new)
conv-mix                            regime mix, 20% fresh real data (new)
==================================  ==========================================
"""

from __future__ import annotations

from typing import Any

from .chain import ChainConfig
from .grids import GridSpec

__all__ = ["PRESETS", "preset", "QUICK_SCALE"]

#: the changes from ChainConfig() of each preset
PRESETS: dict[str, dict[str, Any]] = {
    "fc1": {"model": "fc1"},
    "fc2": {"model": "fc2"},
    "conv-baseline": {},
    "asymm": {"model": "asymm"},
    "conv-unif": {"grid": GridSpec.uniform()},
    "conv-bimodal": {"grid": GridSpec.bimodal()},
    "conv-lessregul": {"kl_weight": 0.3},
    "conv-varloss": {"variability_weight": 10.0},
    "conv-lessregul-varloss": {"kl_weight": 0.7, "variability_weight": 10.0},
    "conv-lessregul-varloss-denoise": {"kl_weight": 0.7, "variability_weight": 10.0, "denoise_threshold": 0.05},
    "conv-denoise": {"denoise_threshold": 0.7},
    "conv-std": {"std_increment": 0.4},
    "conv-std-denoise": {"std_increment": 0.4, "denoise_threshold": 0.05},
    "conv-std-denoise-longchain": {"std_increment": 0.7, "denoise_threshold": 0.05, "generations": 50},
    "conv-accumulate": {"regime": "accumulate"},
    "conv-mix": {"regime": "mix", "real_fraction": 0.2},
}

#: what quick=True changes (generations are capped, not set: the long chain stays longest)
QUICK_SCALE = {"n_samples": 2_000, "epochs": 3, "generations": 6}
_QUICK_LONG_GENERATIONS = 10


def preset(name: str, quick: bool = False, **overrides: Any) -> ChainConfig:
    """The config of a named experiment.

    Parameters
    ----------
    name : str
        A key of :data:`PRESETS`.
    quick : bool
        Use the quick scale (:data:`QUICK_SCALE`) instead of the original's.
    **overrides
        Any ChainConfig fields to set on top (e.g. ``seed=3``).

    Returns
    -------
    ChainConfig
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    fields = dict(PRESETS[name])
    if quick:
        long_chain = fields.get("generations", 20) > 20
        fields.update(QUICK_SCALE)
        if long_chain:
            fields["generations"] = _QUICK_LONG_GENERATIONS
    fields.update(overrides)
    return ChainConfig(**fields)
