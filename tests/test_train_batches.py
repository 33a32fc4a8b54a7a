"""Points drawn for the training losses (paper Sec. 4, eq. 2)."""

from __future__ import annotations

import random

import pytest
import torch

from funcorr.images import InputError
from funcorr.train import TrainConfig, TrainingCache, draw_spatial_batch


def toy_cache(pool: int = 256, part_rows: slice = slice(0, 8)) -> TrainingCache:
    """Two views of one asset whose correspondence pool holds ``pool`` distinct pixels; the
    functional part covers rows ``part_rows`` of the 32 x 32 image."""
    ys, xs = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    pixels = torch.stack([xs.flatten(), ys.flatten()], -1).float()[
        torch.randperm(1024, generator=torch.Generator().manual_seed(0))[:pool]
    ]
    corr = torch.stack([pixels, pixels + 0.25], dim=1)  # (pool, 2, 2)
    part = torch.zeros(2, 32, 32, dtype=torch.bool)
    part[:, part_rows] = True
    return TrainingCache(
        features=torch.zeros(2, 1, 1, 4, 2, 2, dtype=torch.float16),
        masks=torch.ones(2, 32, 32, dtype=torch.bool),
        part_masks={"pour-with": part},
        asset_of=torch.tensor([0, 0]),
        functions_of_asset={0: ["pour-with"]},
        spatial=[(0, 1, corr)],
        label_source="true",
        patch_size=14,
        stride=14,
    )


def test_spatial_points_never_repeat_so_no_positive_is_its_own_negative():
    cache, rng, gen = toy_cache(), random.Random(0), torch.Generator().manual_seed(0)
    for _ in range(50):
        batch = draw_spatial_batch(cache, n_pairs=4, n_points=128, rng=rng, gen=gen)
        assert batch.points.shape == (4, 128, 2, 2)
        for rows in batch.points:
            # Row n's view-b pixel is the positive of anchor n; every other row is a negative.
            assert len({tuple(p.tolist()) for p in rows[:, 1]}) == 128


def test_small_pools_are_padded_and_masked_instead_of_repeating():
    batch = draw_spatial_batch(
        toy_cache(pool=40), 2, 128, random.Random(0), torch.Generator().manual_seed(0)
    )
    assert batch.points.shape[1] == 40 and batch.valid.all()
    assert len({tuple(p.tolist()) for p in batch.points[0, :, 0]}) == 40
    cache = toy_cache(pool=40)
    cache.spatial.append((1, 0, cache.spatial[0][2][:20].flip(1)))
    rng = random.Random(0)
    for _ in range(20):
        batch = draw_spatial_batch(cache, 4, 128, rng, torch.Generator().manual_seed(0))
        for rows, valid in zip(batch.points, batch.valid):
            real = rows[valid]
            assert len(real) in (20, 40) and len({tuple(p.tolist()) for p in real[:, 1]}) == len(
                real
            )


def test_padding_rows_do_not_change_the_spatial_loss():
    from funcorr.model.losses import spatial_infonce

    f1 = torch.nn.functional.normalize(torch.randn(1, 6, 8), dim=-1)
    f2 = torch.nn.functional.normalize(torch.randn(1, 6, 8), dim=-1)
    valid = torch.tensor([[True] * 4 + [False] * 2])
    padded = torch.cat([f2[:, :4], torch.randn(1, 2, 8)], dim=1)
    expected = spatial_infonce(f1[:, :4], f2[:, :4])
    assert torch.allclose(spatial_infonce(f1, padded, valid=valid), expected)


def test_on_part_draws_only_functional_part_pixels():
    cache = toy_cache(pool=1024, part_rows=slice(0, 8))
    batch = draw_spatial_batch(
        cache, 3, 64, random.Random(1), torch.Generator().manual_seed(1), on_part=True
    )
    assert (batch.points[..., 0, 1] < 8).all()  # view-a rows 0..7 = the part
    anywhere = draw_spatial_batch(cache, 3, 64, random.Random(1), torch.Generator().manual_seed(1))
    assert (anywhere.points[..., 0, 1] >= 8).any()


@pytest.mark.parametrize(
    "override, message",
    [
        ({"steps": -5}, "steps must be positive"),
        ({"batch_pairs": 2.5}, "batch_pairs must be an integer"),
        ({"steps": "ten"}, "steps must be an integer"),
        ({"temperature": 0}, "temperature must be positive"),
        ({"val_every": 0}, "val_every must be positive"),
        ({"checkpoint_every": 0}, "checkpoint_every must be positive"),
        ({"labels": "gold"}, "labels must be"),
        ({"background_kinds": ["plaid"]}, "background_kinds"),
    ],
)
def test_config_refuses_impossible_values(override, message):
    with pytest.raises(InputError, match=message):
        TrainConfig(data="d", **override)
