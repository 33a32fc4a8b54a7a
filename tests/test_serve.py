"""The viewer: caches, JSON API and an end-to-end run in headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from browser.chromium import find_chromium, headless_chromium
from browser.engine import matcher_factory
from browser.server import running_server
from PIL import Image

from funcorr.images import load_image
from funcorr.model.matching import transfer_points
from funcorr.serve.cache import LRUCache
from funcorr.serve.viewer import (
    MatcherChoice,
    Viewer,
    ViewerConfig,
    display_to_original,
    original_to_display,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = MatcherChoice("dinov2-s14")
# The target is the scene cropped 40 px further right and 28 px further down than the source.
SHIFT = np.array([-40.0, -28.0])


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Path:
    """A 300x300 RGBA source (alpha = object) and a 260x320 RGB crop of the same scene."""
    from skimage.data import astronaut

    root = tmp_path_factory.mktemp("viewer_pair")
    scene = np.asarray(Image.fromarray(astronaut()).resize((400, 400)))
    source = scene[20:320, 20:320]
    alpha = np.zeros(source.shape[:2], np.uint8)
    alpha[20:280, 30:270] = 255
    Image.fromarray(np.dstack([source, alpha])).save(root / "source.png")
    Image.fromarray(scene[48:368, 60:320]).save(root / "target.png")
    Image.fromarray(scene[100:300, 100:300]).save(root / "third.png")
    return root


@pytest.fixture(scope="module")
def viewer(dinov2_s14) -> Viewer:
    return Viewer(ViewerConfig(feature_cache_size=2), matcher_factory=matcher_factory(dinov2_s14))


@pytest.fixture(scope="module")
def client(viewer):
    from fastapi.testclient import TestClient

    from funcorr.serve.app import create_app

    with TestClient(create_app(viewer), base_url="http://127.0.0.1") as test_client:
        yield test_client


def upload(client, path: Path) -> dict:
    response = client.post(
        "/api/images", files={"file": (path.name, path.read_bytes(), "image/png")}
    )
    assert response.status_code == 200, response.text
    return response.json()


def engine_match(
    viewer: Viewer, source: Path, target: Path, point: tuple[float, float]
) -> np.ndarray:
    """Where the matching engine itself (transfer_points) sends ``point``, in original pixels."""
    matcher = viewer.matcher(DEFAULT)
    src, tgt = matcher.prepare(load_image(source)), matcher.prepare(load_image(target))
    fs, ft = matcher.features([src, tgt])
    moved = transfer_points(fs, ft, src.plan.to_net(torch.tensor([point])))
    return tgt.plan.to_orig(moved.points.cpu())[0].numpy()


def test_lru_cache_evicts_least_recent_and_counts():
    cache: LRUCache[str, int] = LRUCache(2)
    assert cache.get_or_create("a", lambda: 1) == 1
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.get_or_create("a", lambda: 99) == 1
    assert (cache.hits, cache.misses) == (1, 1)
    with pytest.raises(ValueError):
        cache.get_or_create("d", lambda: (_ for _ in ()).throw(ValueError("boom")))
    assert "d" not in cache and len(cache) == 2


def test_display_mapping_round_trips():
    size, display = (300, 200), (150, 100)
    xy = display_to_original(size, display)
    # Display pixel (0, 0) covers original pixels 0..1, so its centre is at 0.5.
    assert torch.allclose(xy[0], torch.tensor([0.5, 0.5]))
    back = original_to_display(xy.numpy(), size, display)
    assert np.allclose(back[:2], [[0, 0], [1, 0]])


def test_click_matches_engine_and_reuses_features(client, viewer, pair):
    source, target = upload(client, pair / "source.png"), upload(client, pair / "target.png")
    assert source["has_mask"] and (source["width"], source["height"]) == (300, 300)
    assert (target["width"], target["height"]) == (260, 320)
    matcher = {"backbone": "dinov2-s14"}
    body = {"source": source["id"], "target": target["id"], "matcher": matcher}
    assert client.post("/api/prepare", json=body).status_code == 200
    misses, dense_misses = viewer.features.misses, viewer.dense.misses

    point = (150.0, 120.0)
    answer = client.post("/api/click", json={**body, "x": point[0], "y": point[1]}).json()
    assert (viewer.features.misses, viewer.dense.misses) == (misses, dense_misses), (
        "a click must not recompute features"
    )
    expected = engine_match(viewer, pair / "source.png", pair / "target.png", point)
    assert np.abs(np.array(answer["target"]) - expected).max() <= 1.0
    assert np.abs(np.array(answer["target"]) - (np.array(point) + SHIFT)).max() <= 12
    assert answer["modes"][0]["target"] == answer["target"] and answer["modes"][0][
        "strength"
    ] == pytest.approx(1.0)
    assert -1 <= answer["similarity"] <= 1
    heat = Image.open(io.BytesIO(base64.b64decode(answer["heatmap"].split(",", 1)[1])))
    # The heat map covers the whole target (display size = original size below 448 px).
    assert heat.size == (260, 320)
    # Raw backbone features ignore the function: changing it reuses the cached features.
    again = client.post(
        "/api/click",
        json={
            **body,
            "matcher": {**matcher, "function": "pour-with"},
            "x": point[0],
            "y": point[1],
            "heatmap": False,
        },
    ).json()
    assert again["target"] == answer["target"] and viewer.features.misses == misses
    assert again["timing_ms"]["total"] < 1000


def test_feature_cache_is_bounded(client, viewer, pair):
    ids = [upload(client, pair / name)["id"] for name in ("source.png", "target.png", "third.png")]
    for key in ids:
        viewer.image_state(key, DEFAULT)
    assert len(viewer.features) == 2
    assert (ids[0], viewer.feature_key(viewer.matcher_config(DEFAULT))) not in viewer.features


def test_labels_discovery_and_exports(client, pair):
    source, target = upload(client, pair / "source.png"), upload(client, pair / "target.png")
    body = {"source": source["id"], "target": target["id"], "matcher": {"backbone": "dinov2-s14"}}
    top = client.post("/api/discover", json={**body, "k": 5}).json()
    assert len(top["matches"]) == 5
    scores = [m["score"] for m in top["matches"]]
    assert scores == sorted(scores, reverse=True)
    for m in top["matches"]:
        assert np.abs(np.array(m["target"]) - (np.array(m["source"]) + SHIFT)).max() <= 16

    labels = client.post("/api/labels", json=body).json()
    left = Image.open(io.BytesIO(base64.b64decode(labels["source"].split(",", 1)[1])))
    plain = Image.open(io.BytesIO(client.get(f"/api/images/{source['id']}.png").content))
    assert plain.size == left.size == (300, 300) and plain.getpixel((2, 2)) == (
        255,
        255,
        255,
    )  # outside the mask: white
    # Object pixels are recoloured, the border outside the mask is not.
    diff = np.abs(np.asarray(left, np.int16) - np.asarray(plain, np.int16)).sum(-1)
    assert diff[left.size[1] // 2, left.size[0] // 2] > 30 and diff[2, 2] < 30

    export = {**body, "point": [150, 120], "top_k": 3, "labels": True}
    record = client.post("/api/export.json", json=export).json()
    assert record["click"]["source"] == [150, 120] and len(record["top_matches"]) == 3
    assert "original image pixels" in record["coordinates"]
    picture = Image.open(io.BytesIO(client.post("/api/export.png", json=export).content))
    assert picture.width > 2 * 200 and picture.height >= 300


def test_object_mask_overlays_show_what_is_matched(client, viewer, pair):
    source, target = upload(client, pair / "source.png"), upload(client, pair / "target.png")
    body = {
        "source": source["id"],
        "target": target["id"],
        "matcher": {"backbone": "dinov2-s14", "object_mask": "auto"},
    }
    masks = client.post("/api/masks", json=body).json()
    # The source's alpha is its mask; the RGB target gets the saliency decoder's.
    assert (masks["source"]["source"], masks["target"]["source"]) == ("alpha", "saliency")
    layer = np.asarray(
        Image.open(io.BytesIO(base64.b64decode(masks["source"]["png"].split(",", 1)[1])))
    )
    assert layer.shape == (300, 300, 4)
    assert (
        layer[150, 150, 3] == 0 and layer[5, 5, 3] > 0
    )  # clear inside alpha rows 20..280, veiled outside
    state = viewer.image_state(target["id"], MatcherChoice("dinov2-s14", object_mask="auto"))
    assert 0 < int(state.features.mask.sum()) < int(state.prepared.content.sum())
    # ``alpha`` keeps the whole RGB target; the export says which mask each image used.
    plain = client.post(
        "/api/masks", json={**body, "matcher": {"backbone": "dinov2-s14", "object_mask": "alpha"}}
    ).json()
    assert plain["target"]["source"] == "full"
    record = client.post("/api/export.json", json=body).json()
    assert [m["source"] for m in record["object_masks"]] == ["alpha", "saliency"]
    picture = Image.open(
        io.BytesIO(client.post("/api/export.png", json={**body, "masks": True}).content)
    )
    assert picture.height >= 300
    bad = client.post(
        "/api/masks", json={**body, "matcher": {"backbone": "dinov2-s14", "object_mask": "blob"}}
    )
    assert bad.status_code == 400 and "Unknown object mask" in bad.json()["detail"]


def test_errors_are_clear(client, pair):
    source = upload(client, pair / "source.png")
    body = {
        "source": source["id"],
        "target": "0" * 20,
        "matcher": {"backbone": "dinov2-s14"},
        "x": 1,
        "y": 1,
    }
    missing = client.post("/api/click", json=body)
    assert missing.status_code == 404 and "load it again" in missing.json()["detail"]
    outside = client.post("/api/click", json={**body, "target": source["id"], "x": 999})
    assert outside.status_code == 400 and "outside" in outside.json()["detail"]
    checkpoint = client.post(
        "/api/prepare",
        json={
            **body,
            "target": source["id"],
            "matcher": {
                "backbone": "dinov2-s14",
                "checkpoint": "/etc/passwd",
                "function": "pour-with",
            },
        },
    )
    assert checkpoint.status_code == 400 and "not offered" in checkpoint.json()["detail"]
    not_image = client.post("/api/images", files={"file": ("x.png", b"not an image", "image/png")})
    assert not_image.status_code == 400 and "decode" in not_image.json()["detail"]
    foreign = client.get("/api/options", headers={"host": "evil.example"})
    assert foreign.status_code == 400


def test_dataset_pairs_degrade_and_load(client, viewer, tmp_path, monkeypatch):
    assert client.get("/api/pairs").json()["available"] is False
    from funcorr.serve.pairs import DatasetPairs

    assert "no evaluation pairs" in DatasetPairs(tmp_path).listing()["reason"]

    class FakePairs:
        """Stands in for funcorr.data.readers.EvalPairs (its item keys)."""

        def __init__(self, root, split="test"):
            if split != "test":
                raise FileNotFoundError(f"no {split}.json")
            self.pairs = [{"pair_id": "kettle-bottle", "function": "pour-with"}]

        def __len__(self):
            return 1

        def __getitem__(self, index):
            image = torch.rand(3, 64, 80)
            mask = torch.zeros(64, 80, dtype=torch.bool)
            mask[8:56, 10:70] = True
            return {
                "image1": image,
                "image2": image.flip(-1),
                "mask1": mask,
                "mask2": mask,
                "function": "pour-with",
                "pair_id": "kettle-bottle",
            }

    from funcorr.data import readers as dataset

    monkeypatch.setattr(dataset, "EvalPairs", FakePairs)
    pairs = DatasetPairs(tmp_path)
    listing = pairs.listing()
    assert listing["available"] and listing["pairs"] == [
        {"split": "test", "index": 0, "pair_id": "kettle-bottle", "function": "pour-with"}
    ]
    loaded = pairs.load("test", 0)
    assert (
        loaded.function == "pour-with"
        and loaded.first.mask is not None
        and loaded.first.size == (80, 64)
    )


def test_cli_registers_serve_and_transfer():
    from funcorr.cli import build_parser

    args = build_parser().parse_args(
        ["serve", "--port", "9999", "--data", "somewhere", "--function", "pour-with"]
    )
    assert args.port == 9999 and args.data == "somewhere" and callable(args.func)
    assert callable(
        build_parser()
        .parse_args(["transfer", "a.png", "b.png", "--points", "1,2", "--out", "o"])
        .func
    )


# ---- end to end in a browser ------------------------------------------------------------

RECT = "const r = document.querySelector(arguments[0]).getBoundingClientRect(); return [r.left, r.top, r.width, r.height];"


@pytest.fixture(scope="module")
def chromium():
    found = find_chromium()
    if isinstance(found, str):
        pytest.skip(f"browser test needs Chromium: {found}")
    return found


@pytest.mark.slow
def test_browser_click_shows_engine_match(chromium, dinov2_s14, pair, tmp_path):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from funcorr.serve.app import create_app

    viewer = Viewer(ViewerConfig(), matcher_factory=matcher_factory(dinov2_s14))
    with running_server(create_app(viewer)) as url:
        driver = headless_chromium(*chromium, tmp_path / "profile")
        try:
            wait = WebDriverWait(driver, 60, poll_frequency=0.1)
            driver.get(url + "/")
            wait.until(
                lambda d: d.execute_script("return document.body.dataset.initialized === 'true'")
            )
            assert driver.find_element(By.ID, "backbone").get_attribute("value") == "dinov2-s14"
            driver.find_element(By.ID, "source-file").send_keys(str(pair / "source.png"))
            driver.find_element(By.ID, "target-file").send_keys(str(pair / "target.png"))

            def idle(d) -> bool:
                return d.execute_script(
                    "return document.body.dataset.ready === 'true' && document.body.dataset.busy === '0'"
                )

            try:
                wait.until(idle)
            except TimeoutException:
                raise AssertionError(
                    f"page not ready; status: {driver.find_element(By.ID, 'status').text!r}, log: {driver.get_log('browser')}"
                ) from None

            # Click (in viewport coordinates) where original source pixel (150, 120) is drawn.
            left, top, width, height = driver.execute_script(RECT, "#source-pane img.base")
            where = (round(left + 150.5 / 300 * width), round(top + 120.5 / 300 * height))
            actions = ActionBuilder(driver)
            actions.pointer_action.move_to_location(*where).click()
            actions.perform()
            marker = wait.until(
                lambda d: (
                    d.find_elements(By.ID, "target-marker")
                    and d.find_element(By.ID, "target-marker")
                )
            )
            wait.until(idle)

            clicked = driver.find_element(By.ID, "source-marker")
            point = (float(clicked.get_attribute("data-x")), float(clicked.get_attribute("data-y")))
            # Within one screen pixel of the intended spot (the click lands on whole CSS pixels).
            assert abs(point[0] - 150) <= 300 / width and abs(point[1] - 120) <= 300 / height
            expected = engine_match(viewer, pair / "source.png", pair / "target.png", point)
            shown = np.array(
                [float(marker.get_attribute("data-x")), float(marker.get_attribute("data-y"))]
            )
            assert np.abs(shown - expected).max() <= 1.0

            # The marker is drawn on screen where that target pixel is displayed.
            left, top, width, height = driver.execute_script(RECT, "#target-pane img.base")
            marker_left, marker_top, marker_width, marker_height = driver.execute_script(
                RECT, "#target-marker"
            )
            on_screen = (
                left + (expected[0] + 0.5) / 260 * width,
                top + (expected[1] + 0.5) / 320 * height,
            )
            centre = (marker_left + marker_width / 2, marker_top + marker_height / 2)
            assert np.abs(np.array(centre) - on_screen).max() <= 1.5
            assert driver.find_element(
                By.CSS_SELECTOR, "#target-pane img.overlay"
            ).is_displayed(), "heat map overlay missing"
            assert "similarity" in driver.find_element(By.ID, "match").text
            assert "ms" in driver.find_element(By.ID, "status").text

            # Top-K toggle draws K numbered matches on each pane.
            driver.find_element(By.ID, "topk-k").clear()
            driver.find_element(By.ID, "topk-k").send_keys("6")
            driver.find_element(By.ID, "show-topk").click()
            wait.until(
                lambda d: len(d.find_elements(By.CSS_SELECTOR, "#target-pane circle.top")) == 6
            )
            wait.until(idle)

            artifacts = ROOT / "artifacts"
            artifacts.mkdir(exist_ok=True)
            assert driver.save_screenshot(str(artifacts / "viewer.png"))
            docs = ROOT / "docs" / "viewer.png"
            if os.environ.get("FUNCORR_UPDATE_DOCS") or not docs.exists():
                docs.parent.mkdir(exist_ok=True)
                shutil.copyfile(artifacts / "viewer.png", docs)

            # Label transfer colours both panes (and replaces the heat map on the target).
            driver.find_element(By.ID, "show-labels").click()
            wait.until(
                lambda d: d.find_element(By.CSS_SELECTOR, "#source-pane img.overlay").is_displayed()
            )
            wait.until(idle)
            overlay = driver.find_element(
                By.CSS_SELECTOR, "#target-pane img.overlay"
            ).get_attribute("src")
            assert (
                overlay.startswith("data:image/png")
                and "Label transfer" in driver.find_element(By.ID, "status").text
            )
            logs = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
            assert not logs, json.dumps(logs)
        finally:
            driver.quit()
