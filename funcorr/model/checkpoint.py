"""Trained-head checkpoints on disk: safetensors weights plus a JSON record, never a pickle.

A checkpoint is one ``.safetensors`` file: the head's tensors, and in the header's metadata
(``funcorr`` key) a JSON record of everything needed to rebuild the matcher: head config,
backbone (name, blocks, stride), text encoder, and for trained runs the training config,
step and history. Reading it parses JSON and raw tensor bytes only, so a file cannot run
code. Training also writes ``<name>.train.safetensors`` beside it: the same weights plus the
optimizer moments and random-generator states, so a resumed run continues exactly.

Checkpoints written by funcorr 0.1 (``.pt`` pickles) are still read, through
``torch.load(weights_only=True)``, which refuses any object that is not plain data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from funcorr.images import InputError, atomic_path
from funcorr.model.head import FunctionHead, HeadConfig

CHECKPOINT_FORMAT = "funcorr-checkpoint"
CHECKPOINT_VERSION = 2
LEGACY_VERSION = 1
SUFFIX = ".safetensors"
TRAIN_SUFFIX = ".train.safetensors"


@dataclass(frozen=True)
class Checkpoint:
    """A head checkpoint in memory: ``record`` (JSON-safe dict with at least head_config,
    backbone {name, layers, stride} and text_encoder) and the head's ``state`` tensors."""

    record: dict[str, Any]
    state: dict[str, torch.Tensor]

    def head(self) -> FunctionHead:
        """The head rebuilt from the record and loaded with the weights (fp32, eval mode)."""
        try:
            head = FunctionHead(HeadConfig(**self.record["head_config"]))
            head.load_state_dict({k: v.float() for k, v in self.state.items()})
        except (KeyError, TypeError, RuntimeError) as err:
            raise InputError(f"The checkpoint's weights do not fit its head config: {err}") from err
        return head.eval()


def _header(path: Path) -> dict[str, str]:
    """The safetensors header metadata, read without loading tensors."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata() or {}


def _metadata(record: dict[str, Any]) -> dict[str, str]:
    return {
        "format": CHECKPOINT_FORMAT,
        "version": str(CHECKPOINT_VERSION),
        "funcorr": json.dumps(record),
    }


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Atomic write: a crash mid-save never leaves a truncated file under ``path``."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def checkpoint_record(
    head: FunctionHead, backbone: dict[str, Any], text_encoder: str, **extra: Any
) -> dict[str, Any]:
    """The JSON record of a head: its config, the backbone spec and the text encoder, plus
    anything JSON-safe in ``extra`` (train_config, step, history, label_source...)."""
    return {
        "head_config": asdict(head.config),
        "backbone": backbone,
        "text_encoder": text_encoder,
        **extra,
    }


def save_checkpoint(
    path: Path, head: FunctionHead, record: dict[str, Any], dtype: torch.dtype = torch.float32
) -> None:
    """Write the head's weights (cast to ``dtype``; fp16 halves a shipped model) and ``record``."""
    save_checkpoint_state(path, head.state_dict(), record, dtype)


def save_checkpoint_state(
    path: Path,
    state: dict[str, torch.Tensor],
    record: dict[str, Any],
    dtype: torch.dtype = torch.float32,
) -> None:
    """Write head weights ``state`` (floating tensors cast to ``dtype``) with ``record``."""
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    _save_tensors(Path(path), state, _metadata(record))


def _read_legacy(path: Path) -> Checkpoint:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types, including UnpicklingError for code
        raise InputError(
            f"Could not read checkpoint {path} as plain data (funcorr never loads pickled code): {err}"
        ) from None
    if (
        not isinstance(payload, dict)
        or payload.get("version") != LEGACY_VERSION
        or "head_state" not in payload
    ):
        raise InputError(f"{path} is not a funcorr checkpoint.")
    record = {
        k: v
        for k, v in payload.items()
        if k
        in (
            "head_config",
            "backbone",
            "text_encoder",
            "train_config",
            "step",
            "history",
            "label_source",
        )
    }
    return Checkpoint(record, dict(payload["head_state"]))


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint (``.safetensors``; ``.pt`` from funcorr 0.1 as plain data only)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No checkpoint at path {path}.")
    if path.suffix == ".pt":
        return _read_legacy(path)
    try:
        metadata = _header(path)
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(f"Could not read checkpoint {path}: {err}") from None
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not a funcorr checkpoint (no {CHECKPOINT_FORMAT!r} header).")
    if int(metadata.get("version", 0)) > CHECKPOINT_VERSION:
        raise InputError(
            f"{path} was written by a newer funcorr (checkpoint version {metadata['version']})."
        )
    try:
        record = json.loads(metadata["funcorr"])
    except (KeyError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: the checkpoint's JSON record is unreadable: {err}") from None
    return Checkpoint(record, state)


# --------------------------------------------------------------------------- training state


def training_state_path(path: Path) -> Path:
    """``run/last.safetensors`` -> ``run/last.train.safetensors``."""
    return Path(path).with_name(Path(path).name.removesuffix(SUFFIX) + TRAIN_SUFFIX)


def save_training_state(
    path: Path,
    head: FunctionHead,
    optimizer: torch.optim.Optimizer,
    record: dict[str, Any],
    generator: torch.Generator,
    python_rng: tuple,
) -> None:
    """Everything a resumed run needs, in one self-consistent file: weights (``head/``),
    Adam moments (``optim/<param>/<name>``), the torch generator state, and in the JSON
    record the optimizer's hyper-parameters and the Python RNG state."""
    tensors = {f"head/{k}": v for k, v in head.state_dict().items()}
    names = {id(p): n for n, p in head.named_parameters()}
    groups, scalars = [], {}
    for group in optimizer.param_groups:
        groups.append(
            {k: v for k, v in group.items() if k != "params"}
            | {"params": [names[id(p)] for p in group["params"]]}
        )
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                if torch.is_tensor(value):
                    tensors[f"optim/{names[id(param)]}/{key}"] = value
                else:
                    scalars[f"{names[id(param)]}/{key}"] = value
    tensors["rng/torch"] = generator.get_state()
    record = record | {
        "optimizer": {"param_groups": groups, "scalars": scalars},
        "python_rng": python_rng,
    }
    _save_tensors(training_state_path(path), tensors, _metadata(record))


def read_training_state(
    path: Path, head: FunctionHead, optimizer: torch.optim.Optimizer, generator: torch.Generator
) -> dict[str, Any]:
    """Restore weights, optimizer and generator in place; returns the record (step, history,
    train_config, python_rng as a tuple ready for ``random.setstate``)."""
    state = read_checkpoint(training_state_path(path))
    tensors, record = state.state, state.record
    head.load_state_dict(
        {k.removeprefix("head/"): v for k, v in tensors.items() if k.startswith("head/")}
    )
    params = dict(head.named_parameters())
    optimizer.state.clear()
    for (name, key), value in [
        ((k.split("/")[1], k.split("/")[2]), v)
        for k, v in tensors.items()
        if k.startswith("optim/")
    ]:
        optimizer.state.setdefault(params[name], {})[key] = value
    for compound, value in record["optimizer"]["scalars"].items():
        name, key = compound.split("/")
        optimizer.state.setdefault(params[name], {})[key] = value
    for group, saved in zip(optimizer.param_groups, record["optimizer"]["param_groups"]):
        group.update({k: v for k, v in saved.items() if k != "params"})
    generator.set_state(tensors["rng/torch"])
    version, internal, gauss = record["python_rng"]
    record["python_rng"] = (version, tuple(internal), gauss)
    return record
