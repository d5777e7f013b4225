"""Training checkpoints in safetensors: model, best weights, optimizer, trainer state, RNG.

Tensors go in the safetensors body; everything else (the `TrainState` with its
history and learning-rate counters, optimizer hyper-parameters, the model's config) goes in
its JSON metadata, so nothing is ever unpickled. Writes are atomic: a run killed mid-save
keeps its previous checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_write
from ..errors import CheckpointError
from ..model_config import ModelConfig
from .state import TrainState

LAST_CHECKPOINT = "last.safetensors"


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model: torch.nn.Module,
    best_state: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    model_config: ModelConfig,
    train_config: dict[str, Any],
) -> None:
    """Atomically write everything needed to resume training exactly, and the settings that made it."""
    from safetensors.torch import save_file

    optim_tensors, optim_meta = _flatten_optimizer(optimizer.state_dict())
    tensors = {
        **{f"model.{k}": v for k, v in model.state_dict().items()},
        **{f"best.{k}": v for k, v in best_state.items()},
        **optim_tensors,
        "rng.torch": torch.get_rng_state(),
    }
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    metadata = {
        "state": json.dumps(state.to_dict()),
        "optimizer": json.dumps(optim_meta),
        "model_config": model_config.to_json(),
        "train_config": json.dumps(train_config),
    }
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint: ``model`` / ``best`` state dicts, ``optimizer``, ``state``, ``model_config``,
    ``train_config`` (the [`TrainConfig`][slicevid.train.TrainConfig] as a dict), ``rng``.

    Raises:
        CheckpointError: the file is truncated, empty or not a slicevid checkpoint (named in the message).
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = TrainState.from_dict(json.loads(metadata["state"]))
        model_config = ModelConfig.from_dict(json.loads(metadata["model_config"]), source=str(path))
        optimizer = _unflatten_optimizer(tensors, json.loads(metadata["optimizer"]))
        train_config = json.loads(metadata.get("train_config", "{}"))
    except (SafetensorError, OSError, KeyError, TypeError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{path}: not a readable slicevid checkpoint ({type(err).__name__}: {err}); "
            "was it truncated? Remove it to start the run afresh"
        ) from err

    def section(prefix: str) -> dict[str, torch.Tensor]:
        return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}

    return {
        "model": section("model."),
        "best": section("best."),
        "optimizer": optimizer,
        "state": state,
        "model_config": model_config,
        "train_config": train_config,
        "rng": tensors["rng.torch"],
    }
