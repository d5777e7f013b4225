"""The ``save_pretrained`` folder: ``config.json`` (a :class:`ModelConfig`) beside ``model.safetensors``.

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
from .weights import read_state_dict

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
    """The :class:`ModelConfig` of a folder written by ``save_pretrained`` (checked, not loaded)."""
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


def read_pretrained_weights(directory: str | os.PathLike) -> tuple[dict[str, torch.Tensor], str]:
    """The weights of a ``save_pretrained`` folder, and their file name for messages."""
    path = Path(directory) / WEIGHTS_NAME
    return read_state_dict(path), str(path)
