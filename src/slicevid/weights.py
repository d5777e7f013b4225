"""Loading weights safely and offline: safetensors, ``torch.load(weights_only=True)`` or h5py, never pickle.

This layer knows file formats and where frameworks cache their downloads; it knows no model.
Each encoder owns the conversion of foreign checkpoints into its own layout (VGG-16's Keras
weights live with VGG-16), as timm's model files own theirs.

Nothing here ever starts a download: slicevid runs where the network may be closed, and a
retry loop is worse than a clear error. Named weights are looked up in the caches torchvision,
timm (Hugging Face) and Keras fill on a machine with network access; a missing file is a
`WeightsNotFoundError` that names the exact file and where to put it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import CheckpointError, WeightsNotFoundError

WEIGHTS_OPTION = "--encoder-weights FILE (encoder_weights=FILE in Python)"
"""How a user passes a local weights file, in both spellings (for messages)."""
# Keys a full classification checkpoint carries beyond the convolutional trunk.
_HEAD_PREFIXES = ("classifier.", "fc.", "head.", "avgpool.")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` / ``.pth`` / ``.pt`` / ``.bin`` file into a flat state dict.

    Raises:
        WeightsNotFoundError: the file does not exist.
        CheckpointError: it is unreadable, truncated, or would need unpickling.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"Weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{path}: not a readable safetensors file ({err}); was it truncated?") from err
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # the unpickler's errors are many and unhelpful
        raise CheckpointError(
            f"Could not read weights from {path} with torch.load(weights_only=True): {err}. "
            "slicevid only loads plain tensors; re-save the file as a state dict or safetensors."
        ) from err
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state dict (found {type(state).__name__})")
    return state


def read_h5_datasets(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 file by its path (under ``model_weights/`` for Keras whole-model files).

    Raises:
        WeightsNotFoundError: the file does not exist.
        CheckpointError: it is not HDF5.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"Keras weights file not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise CheckpointError(f"{path}: not an HDF5 file ({err})") from err
    datasets: dict[str, np.ndarray] = {}
    with handle:
        root = handle.get("model_weights", handle)
        root.visititems(
            lambda name, item: datasets.__setitem__(name, np.asarray(item)) if isinstance(item, h5py.Dataset) else None
        )
    return datasets


def load_into(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module`` strictly, naming every missing, extra or mis-shaped key.

    A leading ``encoder.`` prefix (our own checkpoints) is stripped, and classification-head
    keys of a full backbone checkpoint (``classifier.*``, ``fc.*`` ...) are ignored.

    Raises:
        CheckpointError: the weights do not fit the module (every problem is listed).
    """
    own = module.state_dict()
    if not any(k in own for k in state) and all(k.startswith("encoder.") for k in state):
        state = {k.removeprefix("encoder."): v for k, v in state.items()}
    load_exactly(module, {k: v for k, v in state.items() if k in own or not k.startswith(_HEAD_PREFIXES)}, source)


def load_exactly(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module`` as it is, or raise one error naming every key that does not fit.

    Raises:
        CheckpointError: missing, unexpected or mis-shaped keys (each listed).
    """
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mis_shaped = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {_short(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_short(unexpected)}")
    if mis_shaped:
        problems.append(f"shape mismatches {_short(mis_shaped)}")
    if problems:
        raise CheckpointError(f"Weights from {source} do not fit {type(module).__name__}: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)


def _short(items: list[str], limit: int = 6) -> str:
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return "[" + ", ".join(items[:limit]) + "]" + more


def adapt_first_conv(state: dict[str, torch.Tensor], module: nn.Module) -> dict[str, torch.Tensor]:
    """Adapt 3-channel conv kernels in ``state`` to the module's input channels, as timm does.

    Only 4D kernels whose shapes differ from the module's in the input-channel dimension alone
    change (timm's ``adapt_input_conv``: summed for one channel, tiled and rescaled for more).
    """
    from timm.models import adapt_input_conv

    own = module.state_dict()
    adapted = dict(state)
    for key, value in state.items():
        target = own.get(key)
        if (
            target is not None
            and value.ndim == 4
            and target.ndim == 4
            and value.shape[1] != target.shape[1]
            and value.shape[0] == target.shape[0]
            and value.shape[2:] == target.shape[2:]
        ):
            adapted[key] = adapt_input_conv(target.shape[1], value)
    return adapted


def torch_hub_file(url: str, what: str) -> Path:
    """The torch hub cache's copy of ``url`` (where ``torch.hub`` downloads put it), never downloading.

    Raises:
        WeightsNotFoundError: the file is not there; the message names the URL and the path.
    """
    target = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if not target.is_file():
        raise WeightsNotFoundError(
            f"{what} weights are not available locally, and slicevid never downloads. Download {url} on a "
            f"machine with network access and copy it to {target} (set TORCH_HOME to move that folder), "
            f"or pass {WEIGHTS_OPTION}."
        )
    return target


def keras_cache_file(name: str, url: str, what: str) -> Path:
    """Keras's cache's copy of ``name`` (``$KERAS_HOME/models`` or ``~/.keras/models``), never downloading.

    Raises:
        WeightsNotFoundError: the file is not there; the message names the URL and the path.
    """
    target = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / name
    if not target.is_file():
        raise WeightsNotFoundError(
            f"{what} weights are not available locally, and slicevid never downloads. Download {url} on a "
            f"machine with network access and copy it to {target} (set KERAS_HOME to move that folder), "
            f"or pass {WEIGHTS_OPTION}."
        )
    return target


def hugging_face_cache_dir() -> str:
    """Where the Hugging Face hub cache is (``HF_HUB_CACHE``, else ``HF_HOME``/hub), for messages."""
    try:
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:
        return "~/.cache/huggingface/hub"
    return str(HF_HUB_CACHE)


def hugging_face_cache_file(repo_id: str, filenames: tuple[str, ...]) -> Path | None:
    """The first of ``filenames`` of ``repo_id`` already in the Hugging Face cache, without any request."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for filename in filenames:
        found = try_to_load_from_cache(repo_id, filename)
        if isinstance(found, str):
            return Path(found)
    return None
