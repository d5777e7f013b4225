"""The ``save_pretrained`` folder: ``config.json`` (the model's description) beside ``model.safetensors``.

Both files are written atomically; reading checks both before anything is built, and every
problem (a missing file, broken JSON, an unknown key, truncated weights) is one error that
names the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ._io import atomic_write, atomic_write_text
from .errors import CheckpointError
from .model_config import ModelConfig
from .weights import load_exactly, read_state_dict

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def write_pretrained(directory: str | os.PathLike, config: ModelConfig, state: dict[str, torch.Tensor]) -> Path:
    """Write ``config`` and the weights ``state`` into ``directory`` (created if needed)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    atomic_write(directory / WEIGHTS_NAME, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))
    atomic_write_text(directory / CONFIG_NAME, config.to_json())
    return directory


def read_model_config(directory: str | os.PathLike) -> ModelConfig:
    """The [`ModelConfig`][slicevid.ModelConfig] of a folder written by ``save_pretrained`` (checked, not loaded)."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    for path in (config_path, weights_path):
        if not path.is_file():
            raise CheckpointError(f"{path} not found: expected a folder written by save_pretrained()")
    try:
        values = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{config_path}: not valid JSON ({err})") from err
    return ModelConfig.from_dict(values, source=str(config_path))


def load_weights(module: torch.nn.Module, directory: str | os.PathLike) -> ModelConfig:
    """Load the weights a run saved for a plain module (``run/best``) into ``module``; return their description.

    ``fit`` saves any model it trains as a ``save_pretrained`` folder. A slicevid model comes
    back with ``SliceSequenceClassifier.from_pretrained``; a plain module cannot be rebuilt from
    the folder, so build it as before and load its weights with this.

    Args:
        module: the module, built as it was for training.
        directory: the run's ``best/`` (or any ``save_pretrained`` folder of that module).

    Returns:
        The saved [`ModelConfig`][slicevid.ModelConfig]: its tasks (class names), input size and preprocessing,
        e.g. for ``predict_scans(module, scans, preprocessing=config.preprocessing,
        class_names=config.class_names)``.

    Raises:
        CheckpointError: the folder is incomplete, or its weights do not fit ``module`` (every
            missing, unexpected and mis-shaped key is named).
    """
    config = read_model_config(directory)
    state, source = read_pretrained_weights(directory)
    load_exactly(module, state, source)
    return config


def read_pretrained_weights(directory: str | os.PathLike) -> tuple[dict[str, torch.Tensor], str]:
    """The weights of a ``save_pretrained`` folder, and their file name for messages."""
    path = Path(directory) / WEIGHTS_NAME
    return read_state_dict(path), str(path)
