"""Checkpoints: {state_dict, config, epoch, metrics} written atomically, read weights-only.

A checkpoint rebuilds its model alone (STYLE section 2): the config is the flat dict of
TrialConfig, so `load_model` needs nothing else. Unlike the original (a pickled module, last
epoch), we store tensors and plain values only and load with torch.load(weights_only=True).
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import torch

from spatialsearch.config import TrialConfig, trial_config_from_dict
from spatialsearch.errors import CheckpointError, ConfigError
from spatialsearch.models import SpatialNetwork, build_model

_KEYS = ("state_dict", "config", "epoch", "metrics")


class Checkpoint(NamedTuple):
    state_dict: dict[str, torch.Tensor]
    config: TrialConfig
    epoch: int
    metrics: dict[str, float]


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """torch.save to a temporary file in the same folder, then rename: never half-written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(obj, file)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | os.PathLike[str], model: torch.nn.Module, config: TrialConfig,
                    epoch: int, metrics: dict[str, float]) -> None:
    save_state(path, model.state_dict(), config, epoch, metrics)


def save_state(path: str | os.PathLike[str], state: dict[str, torch.Tensor],
               config: TrialConfig, epoch: int, metrics: dict[str, float]) -> None:
    """save_checkpoint from a state_dict (no model needs building)."""
    state = {name: tensor.detach().cpu() for name, tensor in state.items()}
    atomic_save({"state_dict": state, "config": config.to_flat_dict(), "epoch": epoch,
                 "metrics": dict(metrics)}, path)


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and check a checkpoint.

    Raises:
        CheckpointError: missing, truncated or corrupt, not a spatialsearch checkpoint, or
            holding a config that no longer validates.
    """
    source = Path(path)
    if not source.is_file():
        raise CheckpointError(f"checkpoint: no file at {str(source)!r}")
    try:
        raw = torch.load(source, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError,
            OSError) as error:
        raise CheckpointError(
            f"checkpoint: {str(source)!r} is not a readable checkpoint "
            f"(truncated, corrupt or not written by spatialsearch): {error}".splitlines()[0]
        ) from error
    if not isinstance(raw, dict) or any(key not in raw for key in _KEYS):
        raise CheckpointError(
            f"checkpoint: {str(source)!r} is not a spatialsearch checkpoint "
            f"(expected a dict with keys {', '.join(_KEYS)})"
        )
    try:
        config = trial_config_from_dict(raw["config"], prefix="checkpoint config: ")
    except ConfigError as error:
        raise CheckpointError(str(error)) from error
    return Checkpoint(raw["state_dict"], config, int(raw["epoch"]), dict(raw["metrics"]))


def load_model(checkpoint: Checkpoint, device: torch.device | str = "cpu") -> SpatialNetwork:
    """The network of a checkpoint with its weights, in eval mode.

    Raises:
        CheckpointError: the weights do not fit the model its config describes.
    """
    model = build_model(checkpoint.config)
    try:
        model.load_state_dict(checkpoint.state_dict)
    except RuntimeError as error:
        raise CheckpointError(
            f"checkpoint: weights do not match the model its config describes: "
            f"{str(error).splitlines()[0]}"
        ) from error
    return model.to(device).eval()
