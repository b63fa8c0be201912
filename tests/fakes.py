"""Test doubles shared by the metrics and plots tests."""

import hashlib
from pathlib import Path

import numpy as np


class FakeRun:
    """The Run interface of encchain.chain (len, images, dataset_sha256, losses), in memory.

    ``losses(k)`` gives three epochs whose last total is ``10 k + 2``, and
    counts its calls in ``loss_calls`` so caching can be tested.
    """

    def __init__(self, datasets, path, spec):
        self.datasets = list(datasets)
        self.path = Path(path)
        self.spec = spec
        self.config = None
        self.loss_calls = 0

    def __len__(self):
        return len(self.datasets)

    def images(self, k):
        return self.datasets[k]

    def dataset_sha256(self, k):
        return hashlib.sha256(self.datasets[k].tobytes()).hexdigest()

    def losses(self, k):
        assert k >= 1
        self.loss_calls += 1
        e = np.arange(3, dtype=np.float64)
        return {"total": 10.0 * k + e, "recon": 8.0 * k + e, "kl": 2.0 + e, "variability": np.zeros(3)}
