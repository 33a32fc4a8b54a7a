"""Training the function-conditioned head (paper Sec. 4) on a funcorr dataset.

    funcorr train --config cfg.yaml           # single process, CPU or one GPU
    torchrun --nproc_per_node 4 -m funcorr.cli train --config cfg.yaml   # DistributedDataParallel

``config`` (what a run depends on) -> ``cache`` (frozen backbone features and part labels of
every training view, computed once) -> ``batches`` (points and pairs drawn each step) ->
``loop`` (losses, validation, checkpoints, resume).
"""

from funcorr.train.batches import draw_functional_pairs, draw_spatial_batch, functional_pair_options
from funcorr.train.cache import TrainingCache, build_cache
from funcorr.train.config import TrainConfig
from funcorr.train.loop import register, train, training_step, validation_pck

__all__ = [
    "TrainConfig",
    "TrainingCache",
    "build_cache",
    "draw_functional_pairs",
    "draw_spatial_batch",
    "functional_pair_options",
    "register",
    "train",
    "training_step",
    "validation_pck",
]
