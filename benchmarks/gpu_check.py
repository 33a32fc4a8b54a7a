"""CUDA smoke check and timing: backbone (fp32 and fp16), dense matching and a head training
step on the GPU agree with the CPU. Needs no weights (random-initialised DINOv2-S).

    python benchmarks/gpu_check.py
"""

from __future__ import annotations

import time

import torch

from funcorr.backbones import load_backbone
from funcorr.model.head import FunctionHead, HeadConfig
from funcorr.model.losses import functional_infonce
from funcorr.model.matching import feature_map_features, mask_pixels, transfer_points


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible")
    print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__)
    images = torch.rand(8, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    cpu = load_backbone("dinov2-s14", pretrained=False)
    gpu = load_backbone("dinov2-s14", pretrained=False, device="cuda")
    half = load_backbone("dinov2-s14", pretrained=False, device="cuda", precision="fp16")
    with torch.no_grad():
        ref = cpu(images[:2])
        out = gpu(images[:2].cuda()).cpu()
        out_half = half(images[:2].cuda()).cpu()
    print(
        f"backbone fp32 max |cuda - cpu| = {(out - ref).abs().max():.2e}; fp16 max rel = {((out_half - ref).abs().max() / ref.abs().max()):.2e}"
    )
    for name, model in (("fp32", gpu), ("fp16", half)):
        batch = images.cuda()
        with torch.no_grad():
            model(batch)
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(10):
                model(batch)
            torch.cuda.synchronize()
        print(
            f"backbone {name}: {(time.perf_counter() - start) / 80 * 1000:.2f} ms per 224x224 image (batch 8)"
        )
    feats = [feature_map_features(f.mean(0), gpu.grid, (224, 224)) for f in out.cuda()]
    feats_cpu = [feature_map_features(f.mean(0), cpu.grid, (224, 224)) for f in out]
    points = mask_pixels(torch.ones(224, 224, dtype=torch.bool))
    torch.cuda.synchronize()
    start = time.perf_counter()
    moved = transfer_points(feats[0], feats[1], points.cuda())
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    moved_cpu = transfer_points(feats_cpu[0], feats_cpu[1], points[:4096])
    agree = (moved.points[:4096].cpu() == moved_cpu.points).all(dim=1).float().mean()
    print(
        f"dense transfer of all 50176 pixels on CUDA: {elapsed:.3f}s; same match as CPU for {agree:.3f} of 4096 checked"
    )
    head = FunctionHead(HeadConfig(in_dim=384)).cuda()
    text = torch.nn.functional.normalize(torch.randn(4, 384, device="cuda"), dim=-1)
    blocks = gpu(images[:4].cuda())
    pts = torch.rand(4, 256, 2, device="cuda") * 223
    feats_a = head(blocks, gpu.grid, pts, text).features
    loss = functional_infonce(
        feats_a[:, :128], feats_a[:, 128:], feats_a.flip(0)[:, :128], feats_a.flip(0)[:, 128:]
    )
    loss.backward()
    print(
        f"head step on CUDA: loss {loss.item():.3f}, grad norm {head.mlp[0].weight.grad.norm():.3e}"
    )


if __name__ == "__main__":
    main()
