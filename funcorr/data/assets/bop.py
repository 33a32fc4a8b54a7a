"""Reader for BOP-style scenes (the layout HANDAL uses).

::

    DATASET/
      models/obj_000001.ply                 object meshes (BOP: millimetres)
      <split>/<scene_id>/
        scene_camera.json                   {"<im_id>": {"cam_K": [9 floats, row-major], "depth_scale": s}}
        scene_gt.json                       {"<im_id>": [{"obj_id": k, "cam_R_m2c": [9], "cam_t_m2c": [3]}, ...]}
        rgb/<im_id:06d>.png|.jpg
        mask_visib/<im_id:06d>_<gt_index:06d>.png

:func:`bop_view` turns one annotated object of one image into a
:class:`~funcorr.data.render.RenderedView`: the real RGB, the visible mask, and
depth / xyz / normals from ray casting the model at the annotated pose (restricted to
the visible mask). The object frame is the model's own frame and units.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from funcorr.data.assets.mesh_io import read_mesh
from funcorr.data.render import RenderedView, render_view
from funcorr.images import InputError


@dataclass(frozen=True)
class BopObject:
    """One annotated object instance: model-to-camera rotation (3, 3) and translation (3,) in model units."""

    obj_id: int
    gt_index: int
    R_m2c: np.ndarray
    t_m2c: np.ndarray
    mask_path: Path

    @property
    def cam_to_world(self) -> np.ndarray:
        """(4, 4) OpenCV camera -> model frame."""
        m2c = np.eye(4)
        m2c[:3, :3], m2c[:3, 3] = self.R_m2c, self.t_m2c
        return np.linalg.inv(m2c)


@dataclass(frozen=True)
class BopFrame:
    """One image of a scene: RGB path, intrinsics K (3, 3) and its annotated objects."""

    image_id: int
    rgb_path: Path
    K: np.ndarray
    objects: tuple[BopObject, ...]


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"BOP scene is missing {path.name} ({path}).")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"Could not parse {path}: {err}") from err


def _rgb_path(scene: Path, image_id: int) -> Path:
    for suffix in (".png", ".jpg", ".jpeg"):
        path = scene / "rgb" / f"{image_id:06d}{suffix}"
        if path.is_file():
            return path
    raise InputError(f"No RGB image for image {image_id} in {scene / 'rgb'}.")


def read_bop_scene(scene_dir: str | os.PathLike) -> list[BopFrame]:
    """All annotated frames of one scene folder, sorted by image id."""
    scene = Path(scene_dir)
    cameras = _read_json(scene / "scene_camera.json")
    gts = _read_json(scene / "scene_gt.json")
    frames = []
    for key in sorted(gts, key=int):
        image_id = int(key)
        if key not in cameras:
            raise InputError(
                f"{scene}: image {image_id} has ground truth but no camera in scene_camera.json."
            )
        K = np.asarray(cameras[key]["cam_K"], np.float64).reshape(3, 3)
        objects = tuple(
            BopObject(
                int(gt["obj_id"]),
                i,
                np.asarray(gt["cam_R_m2c"], np.float64).reshape(3, 3),
                np.asarray(gt["cam_t_m2c"], np.float64).reshape(3),
                scene / "mask_visib" / f"{image_id:06d}_{i:06d}.png",
            )
            for i, gt in enumerate(gts[key])
        )
        frames.append(BopFrame(image_id, _rgb_path(scene, image_id), K, objects))
    return frames


def load_bop_model(models_dir: str | os.PathLike, obj_id: int) -> trimesh.Trimesh:
    """The mesh ``models/obj_<id:06d>.ply`` (model units, usually mm)."""
    return read_mesh(Path(models_dir) / f"obj_{obj_id:06d}.ply")


def bop_view(frame: BopFrame, obj: BopObject, model: trimesh.Trimesh) -> RenderedView:
    """One annotated object as a view: real RGB, visible mask, geometry ray-cast from the model."""
    with Image.open(frame.rgb_path) as im:
        rgb = np.asarray(im.convert("RGB")).copy()
    if not obj.mask_path.is_file():
        raise InputError(f"Missing visible mask {obj.mask_path}.")
    with Image.open(obj.mask_path) as im:
        visible = np.asarray(im.convert("L")) > 0
    h, w = rgb.shape[:2]
    if visible.shape != (h, w):
        raise InputError(
            f"{obj.mask_path} is {visible.shape[1]}x{visible.shape[0]} but the image is {w}x{h}."
        )
    view = render_view(model, frame.K, obj.cam_to_world, size=(w, h))
    keep = view.mask & visible
    view.rgb = rgb
    view.mask = keep
    view.depth[~keep] = 0
    view.xyz[~keep] = np.nan
    view.normals[~keep] = 0
    view.part_ids[~keep] = -1
    return view
