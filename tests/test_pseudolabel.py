"""Pseudo-labelling: box votes on a point cloud, Otsu, closing, back-projection, VLM client.

The scene is a spoon-like object built from two boxes (a thin handle and a wider "bowl"
part at one end), ray-cast analytically by pinhole cameras around it, so every view has
exact depth, xyz and part ids.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from funcorr.data.part_boxes import (
    NoisyOracleProposer,
    OracleNoise,
    VLMBoxProposer,
    VLMConfig,
    VLMError,
    load_part_descriptions,
    mask_box,
    parse_box_numbers,
    part_query,
    reply_box_to_image,
)
from funcorr.data.pseudolabel import (
    PseudoLabelConfig,
    close_point_labels,
    otsu_threshold,
    pseudo_label_part,
    visible_points,
    vote_scores,
)
from funcorr.images import mask_iou

PART_NAMES = ["handle", "bowl"]
SCENE_BOXES = (  # (low corner, high corner, part index) in the object frame
    (np.array([-1.0, -0.06, -0.03]), np.array([0.4, 0.06, 0.03]), 0),
    (np.array([0.4, -0.2, -0.06]), np.array([0.95, 0.2, 0.06]), 1),
)


@dataclass
class SyntheticView:
    rgb: np.ndarray
    depth: np.ndarray
    xyz: np.ndarray
    mask: np.ndarray
    part_ids: np.ndarray
    K: np.ndarray
    cam_to_world: np.ndarray
    part_names: list[str] = field(default_factory=lambda: list(PART_NAMES))


def look_at(eye: np.ndarray) -> np.ndarray:
    """OpenCV cam_to_world for a camera at ``eye`` looking at the origin, world z up."""
    forward = -eye / np.linalg.norm(eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, np.cross(forward, right), forward], axis=1)
    pose[:3, 3] = eye
    return pose


def render(pose: np.ndarray, size: int = 64, focal: float = 110.0) -> SyntheticView:
    K = np.array([[focal, 0, (size - 1) / 2], [0, focal, (size - 1) / 2], [0, 0, 1.0]])
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    # Camera rays with unit z, so the hit parameter t is the camera-z depth.
    dirs = (np.stack([xs, ys, np.ones_like(xs)], -1) @ np.linalg.inv(K).T) @ pose[:3, :3].T
    eye = pose[:3, 3]
    depth = np.full((size, size), np.inf)
    part_ids = np.full((size, size), -1, np.int16)
    for low, high, part in SCENE_BOXES:
        with np.errstate(divide="ignore", invalid="ignore"):
            t_low, t_high = (low - eye) / dirs, (high - eye) / dirs
        t_near = np.minimum(t_low, t_high).max(-1)
        t_far = np.maximum(t_low, t_high).min(-1)
        hit = (t_near <= t_far) & (t_far > 0) & (t_near < depth)
        depth[hit], part_ids[hit] = t_near[hit], part
    mask = np.isfinite(depth)
    depth = np.where(mask, depth, 0.0)
    xyz = np.where(mask[..., None], eye + depth[..., None] * dirs, np.nan)
    rgb = np.where(
        mask[..., None], np.where(part_ids[..., None] == 1, [200, 60, 60], [90, 90, 200]), 255
    )
    return SyntheticView(
        rgb.astype(np.uint8),
        depth.astype(np.float32),
        xyz.astype(np.float32),
        mask,
        part_ids,
        K,
        pose,
    )


def ring_views(n: int = 8, radius: float = 3.0) -> list[SyntheticView]:
    views = []
    for i in range(n):
        azimuth, elevation = 2 * np.pi * i / n + 0.3, np.deg2rad(35 if i % 2 else -25)
        eye = radius * np.array(
            [
                np.cos(elevation) * np.cos(azimuth),
                np.cos(elevation) * np.sin(azimuth),
                np.sin(elevation),
            ]
        )
        views.append(render(look_at(eye)))
    return views


def surface_points(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform over the outer surface of the scene, and their part index."""
    areas = np.array(
        [np.prod(np.delete(high - low, axis)) for low, high, _ in SCENE_BOXES for axis in range(3)]
    )
    counts = rng.multinomial(2 * n, areas / areas.sum()).reshape(len(SCENE_BOXES), 3)
    points, parts = [], []
    for (low, high, part), per_axis in zip(SCENE_BOXES, counts):
        for axis, m in enumerate(per_axis):
            p = rng.uniform(low, high, size=(m, 3))
            p[:, axis] = np.where(rng.random(m) < 0.5, low[axis], high[axis])
            points.append(p)
            parts.append(np.full(m, part))
    points, parts = np.concatenate(points), np.concatenate(parts)
    buried = np.zeros(len(points), bool)
    for low, high, part in SCENE_BOXES:
        buried |= (parts != part) & np.all((points > low + 1e-9) & (points < high - 1e-9), axis=1)
    keep = rng.permutation(np.flatnonzero(~buried))[:n]
    return points[keep], parts[keep]


@pytest.fixture(scope="module")
def scene():
    points, parts = surface_points(20_000, np.random.default_rng(0))
    return ring_views(), points, parts


def mean_part_iou(masks, views) -> float:
    return float(np.mean([mask_iou(mask, view.part_ids == 1) for mask, view in zip(masks, views)]))


# --- aggregation -------------------------------------------------------------------------------


def test_consistent_boxes_recover_part(scene):
    views, points, parts = scene
    result = pseudo_label_part(
        views, points, NoisyOracleProposer(), "spoon", "bowl", PseudoLabelConfig(n_trials=1)
    )
    assert mean_part_iou(result.masks, views) > 0.9
    point_iou = (result.labels & (parts == 1)).sum() / (result.labels | (parts == 1)).sum()
    assert point_iou > 0.9
    assert 0.0 <= np.nanmin(result.scores) and np.nanmax(result.scores) == 1.0


def test_noisy_boxes_still_recover_part(scene):
    views, points, _ = scene
    noise = OracleNoise(jitter=0.05, miss_rate=0.2, false_box_rate=0.2)
    result = pseudo_label_part(
        views,
        points,
        NoisyOracleProposer(noise, seed=3),
        "spoon",
        "bowl",
        PseudoLabelConfig(n_trials=4),
    )
    n_calls = sum(len(trials) for trials in result.proposals)
    n_empty = sum(not boxes for trials in result.proposals for boxes in trials)
    n_double = sum(len(boxes) == 2 for trials in result.proposals for boxes in trials)
    assert n_empty > 0 and n_double > 0 and n_calls == 4 * len(views)  # the noise really happened
    assert mean_part_iou(result.masks, views) > 0.8


def test_votes_are_normalised_by_visible_views(scene):
    views, points, _ = scene
    everywhere = [[[(-1e6, -1e6, 1e6, 1e6)]] for _ in views]
    votes = vote_scores(points, views, everywhere)
    assert np.all(votes.scores[votes.seen > 0] == 1.0)  # seen anywhere -> inside every box -> 1
    assert np.isnan(votes.scores[votes.seen == 0]).all()
    half = [[[(-1e6, -1e6, 1e6, 1e6)], []] for _ in views]  # in the box in one of two trials
    assert np.allclose(vote_scores(points, views, half).scores[votes.seen > 0], 0.5)


def test_visibility_uses_depth(scene):
    views, points, _ = scene
    view = views[0]
    visible, xy = visible_points(points, view)
    cols, rows = np.rint(xy[visible]).astype(int).T
    # every visible point is close to the surface seen at its pixel ...
    assert np.linalg.norm(view.xyz[rows, cols] - points[visible], axis=1).max() < 0.15
    # ... and the far face of the handle (pointing away from the camera) is hidden
    camera_axis = view.cam_to_world[:3, 2]
    far_face = np.isclose(points[:, 2], 0.03 * np.sign(camera_axis[2])) & (points[:, 0] < 0.3)
    far_face &= np.abs(points[:, 1]) < 0.03  # away from the side faces, which share its pixels
    assert far_face.sum() > 50 and not visible[far_face].any()


def test_otsu_splits_bimodal_scores():
    rng = np.random.default_rng(0)
    scores = np.concatenate(
        [rng.normal(0.2, 0.05, 5000), rng.normal(0.8, 0.05, 1000), [np.nan] * 10]
    )
    assert 0.35 < otsu_threshold(scores) < 0.65
    assert otsu_threshold(np.full(5, 0.3)) == pytest.approx(0.3)


def test_closing_fills_a_hole_and_keeps_far_points_out():
    grid = np.stack(np.meshgrid(np.arange(40.0), np.arange(40.0), indexing="ij"), -1).reshape(-1, 2)
    points = np.concatenate([grid, np.zeros((len(grid), 1))], axis=1)
    part = grid[:, 0] < 20
    holed = part & ~((grid[:, 0] == 10) & (grid[:, 1] == 10))
    closed = close_point_labels(points, holed, k=9)
    assert np.array_equal(closed, part)  # the hole is filled, the boundary has not moved


def test_mask_iou():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2], b[1:3] = True, True
    assert mask_iou(a, b) == pytest.approx(4 / 12)
    assert mask_iou(a, a) == 1.0 and mask_iou(b & ~b, a & ~a) == 1.0


# --- oracle ------------------------------------------------------------------------------------


def test_oracle_boxes(scene):
    view = scene[0][0]
    assert NoisyOracleProposer().propose(view, "spoon", "bowl") == [mask_box(view.part_ids == 1)]
    assert NoisyOracleProposer(OracleNoise(miss_rate=1.0)).propose(view, "spoon", "bowl") == []
    noisy = OracleNoise(jitter=0.1, false_box_rate=0.5)
    first = [NoisyOracleProposer(noisy, seed=7).propose(view, "spoon", "bowl") for _ in range(2)]
    assert first[0] == first[1]  # same seed, same boxes
    with pytest.raises(ValueError, match="Unknown part"):
        NoisyOracleProposer().propose(view, "spoon", "blade")


# --- VLM ---------------------------------------------------------------------------------------


def test_parse_box_formats():
    assert parse_box_numbers("It is at [[100,200,300,400]].") == [(100, 200, 300, 400)]
    assert parse_box_numbers("[[1,2,3,4;5,6,7,8]]") == [(1, 2, 3, 4), (5, 6, 7, 8)]
    assert parse_box_numbers('[{"bbox_2d": [10.5, 20, 30, 40.25], "label": "spout"}]') == [
        (10.5, 20, 30, 40.25)
    ]
    assert parse_box_numbers("[[1, 2], [3, 4]] and no box") == []
    # normalised 0-1000 over the sent image, measured from the outer edge
    assert reply_box_to_image((0, 0, 1000, 500), "norm1000", (100, 100), (0, 0), (100, 100)) == (
        -0.5,
        -0.5,
        99.5,
        49.5,
    )
    assert reply_box_to_image((30, 40, 10, 20), "pixel", (100, 100), (0, 10), (100, 80)) == (
        10,
        10,
        30,
        30,
    )
    assert (
        reply_box_to_image((0, 0, 10, 5), "pixel", (100, 100), (0, 20), (100, 60)) is None
    )  # all in padding


def test_part_query_uses_reference_wording():
    query = part_query("kettle", "spout", load_part_descriptions())
    assert query == (
        'What are the exact bounding boxes of "spout - the elongated, usually curved projection from which '
        'hot liquids are poured out" in the provided picture?'
    )
    assert '"the lid of the kettle"' in part_query("kettle", "lid", load_part_descriptions())
    assert "measuring cup" in load_part_descriptions()  # HANDAL's measuring_cup, normalised


class FakeVLM(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, dict(self.headers), body))
        reply = {"choices": [{"message": {"role": "assistant", "content": self.server.reply}}]}
        data = json.dumps(reply).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_vlm():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeVLM)
    server.requests, server.reply, server.status = [], "", 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@dataclass
class ImageOnly:
    rgb: np.ndarray


def test_vlm_client_against_fake_server(fake_vlm, monkeypatch):
    monkeypatch.setenv("FAKE_VLM_KEY", "secret-123")
    fake_vlm.reply = "The spout is at [[250,500,750,750]] in the image."
    rgb = np.zeros((50, 100, 3), np.uint8)
    rgb[:, :, 0] = 200
    config = VLMConfig(
        base_url=f"http://127.0.0.1:{fake_vlm.server_port}/v1",
        model="cogvlm-chat-17b",
        api_key_env="FAKE_VLM_KEY",
    )
    with VLMBoxProposer(config) as proposer:
        boxes = proposer.propose(ImageOnly(rgb), "kettle", "spout")

    path, headers, body = fake_vlm.requests[0]
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer secret-123"
    assert body["model"] == "cogvlm-chat-17b"
    text, image = body["messages"][0]["content"]
    assert "spout - the elongated, usually curved projection" in text["text"]
    header, payload = image["image_url"]["url"].split(",", 1)
    assert header == "data:image/jpeg;base64"
    sent = np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))))
    assert sent.shape == (100, 100, 3)  # padded to a square, image centred vertically
    assert sent[50, 50, 0] > 150 and sent[5, 50].min() > 240
    # 0-1000 over the 100 px square: x 25..75, y 50..75 (edges), minus 25 px of top padding
    assert boxes == [pytest.approx((24.5, 24.5, 74.5, 49.5))]


def test_vlm_client_reports_http_errors(fake_vlm):
    fake_vlm.status = 500
    config = VLMConfig(base_url=f"http://127.0.0.1:{fake_vlm.server_port}/v1", model="m")
    with VLMBoxProposer(config) as proposer, pytest.raises(VLMError, match="HTTP 500"):
        proposer.propose(ImageOnly(np.zeros((8, 8, 3), np.uint8)), "kettle", "spout")


def test_vlm_reply_without_boxes_is_a_miss(fake_vlm):
    fake_vlm.reply = "I cannot see a spout."
    config = VLMConfig(
        base_url=f"http://127.0.0.1:{fake_vlm.server_port}/v1", model="m", coords="pixel"
    )
    with VLMBoxProposer(config) as proposer:
        assert proposer.propose(ImageOnly(np.zeros((8, 8, 3), np.uint8)), "kettle", "spout") == []


# --- shared geometry ---------------------------------------------------------------------------


def test_parts_sharing_one_geometry_equal_parts_labelled_alone():
    """A rendered mug (rim for pour-with and scoop-with, handle for hang-onto) pseudo-labelled
    part by part from scratch and with one shared geometry: identical arrays throughout."""
    from funcorr.data.assets import generate
    from funcorr.data.pseudolabel import pseudo_label_parts
    from funcorr.data.render import render_views

    asset = generate("mug", 0)
    views = render_views(asset, 5, (96, 96), seed=0)
    rng = np.random.default_rng(0)
    points = np.concatenate([v.xyz[v.mask] for v in views])
    points = points[rng.choice(len(points), 6000, replace=False)]
    parts = [fp.part for fp in asset.functions.values()]
    assert parts == ["rim", "rim", "handle"]
    noise = OracleNoise(jitter=0.1, miss_rate=0.2, false_box_rate=0.1)
    config = PseudoLabelConfig(n_trials=3)
    alone_proposer, shared_proposer = (
        NoisyOracleProposer(noise, seed=5),
        NoisyOracleProposer(noise, seed=5),
    )
    alone = [
        pseudo_label_part(views, points, alone_proposer, "mug", part, config) for part in parts
    ]
    shared = pseudo_label_parts(views, points, shared_proposer, "mug", parts, config)
    for a, b in zip(alone, shared, strict=True):
        assert a.proposals == b.proposals and a.threshold == b.threshold
        for name in ("scores", "seen", "voted", "labels"):
            assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=name == "scores"), (
                name
            )
        assert all(np.array_equal(m, n) for m, n in zip(a.masks, b.masks, strict=True))
    assert not np.array_equal(shared[0].labels, shared[2].labels)  # rim and handle differ
    assert shared[2].labels.any() and shared[0].labels.any()
