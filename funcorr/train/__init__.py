"""Training the function-conditioned head (paper Sec. 4) on a funcorr dataset.

    funcorr train --config cfg.yaml           # single process, CPU or one GPU
    torchrun --nproc_per_node 4 -m funcorr.cli train --config cfg.yaml   # DistributedDataParallel

``config`` (what a run depends on) -> ``cache`` (frozen backbone features and part labels of
every training view, computed once) -> ``batches`` (points and pairs drawn each step) ->
``loop`` (losses, validation, checkpoints, resume); ``commands`` the command line.
"""

from __future__ import annotations

import importlib

# Names load with their module on first use: the command line builds its parser from
# ``funcorr.train.commands`` without importing torch (``funcorr --help`` stays instant).
_EXPORTS = {
    "TrainConfig": "funcorr.train.config",
    "TrainingCache": "funcorr.train.cache",
    "build_cache": "funcorr.train.cache",
    "draw_functional_pairs": "funcorr.train.batches",
    "draw_spatial_batch": "funcorr.train.batches",
    "functional_pair_options": "funcorr.train.batches",
    "train": "funcorr.train.loop",
    "training_step": "funcorr.train.loop",
    "validation_pck": "funcorr.train.loop",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'funcorr.train' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
