"""Training the function-conditioned head (paper Sec. 4) on a funcorr dataset.

    funcorr train --config cfg.yaml           # single process, CPU or one GPU
    torchrun --nproc_per_node 4 -m funcorr.cli train --config cfg.yaml   # DistributedDataParallel

``config`` (what a run depends on) -> ``cache`` (frozen backbone features and part labels of
every training view, computed once) -> ``batches`` (points and pairs drawn each step) ->
``loop`` (losses, validation, checkpoints, resume); ``commands`` the command line.
"""

from __future__ import annotations

from funcorr.lazy import lazy_exports

# Names load with their module on first use: the command line builds its parser from
# ``funcorr.train.commands`` without importing torch (``funcorr --help`` stays instant).
__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "funcorr.train.batches": (
            "draw_functional_pairs",
            "draw_spatial_batch",
            "functional_pair_options",
        ),
        "funcorr.train.cache": ("TrainingCache", "build_cache"),
        "funcorr.train.config": ("TrainConfig",),
        "funcorr.train.loop": ("train", "training_step", "validation_pck"),
    },
)
