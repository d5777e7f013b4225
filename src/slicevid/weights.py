"""Loading weights safely: safetensors or ``torch.load(weights_only=True)``, never pickle.

Also resolves ``encoder_weights="imagenet"`` for the VGG-16 encoder from torchvision's
local cache, and fails with a message naming the exact file to place there when offline.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .errors import WeightsNotFoundError

VGG16_IMAGENET_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
# Keys a full classification checkpoint carries beyond the convolutional trunk.
_HEAD_PREFIXES = ("classifier.", "fc.", "head.", "avgpool.")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` / ``.pth`` / ``.pt`` / ``.bin`` file into a flat state dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # the unpickler's errors are many and unhelpful
        raise ValueError(
            f"Could not read weights from {path} with torch.load(weights_only=True): {err}. "
            "slicevid only loads plain tensors; re-save the file as a state dict or safetensors."
        ) from err
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (found {type(state).__name__})")
    return state


def load_into(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module`` strictly, naming every missing, extra or mis-shaped key.

    A leading ``encoder.`` prefix (our own checkpoints) is stripped, and classification-head
    keys of a full backbone checkpoint (``classifier.*``, ``fc.*`` ...) are ignored.
    """
    own = module.state_dict()
    if not any(k in own for k in state) and all(k.startswith("encoder.") for k in state):
        state = {k.removeprefix("encoder."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if k in own or not k.startswith(_HEAD_PREFIXES)}
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
        raise ValueError(f"Weights from {source} do not fit {type(module).__name__}: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)


def _short(items: list[str], limit: int = 6) -> str:
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return "[" + ", ".join(items[:limit]) + "]" + more


def vgg16_imagenet_state() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet VGG-16 weights, from the local torch hub cache if present.

    Downloads only when the network is allowed (``SLICEVID_OFFLINE`` unset). When the file
    is missing offline, the error names the exact path to copy it to.
    """
    target = Path(torch.hub.get_dir()) / "checkpoints" / Path(VGG16_IMAGENET_URL).name
    if not target.is_file():
        if os.environ.get("SLICEVID_OFFLINE"):
            raise WeightsNotFoundError(_missing_vgg_message(target))
        try:
            torch.hub.load_state_dict_from_url(VGG16_IMAGENET_URL, progress=True, map_location="cpu")
        except Exception as err:
            raise WeightsNotFoundError(_missing_vgg_message(target) + f" (download failed: {err})") from err
    return read_state_dict(target)


def _missing_vgg_message(target: Path) -> str:
    return (
        f"ImageNet VGG-16 weights are not available locally. Download {VGG16_IMAGENET_URL} "
        f"on a machine with network access and copy it to {target} (set TORCH_HOME to move "
        "that folder), or pass encoder_weights='/path/to/vgg16.pth'."
    )
