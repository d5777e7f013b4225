"""Loading weights safely: safetensors, ``torch.load(weights_only=True)`` or h5py, never pickle.

Also resolves the named encoder weights from local caches, failing with a message that names
the exact file to place there when offline:

* ``"imagenet"`` for ``"vgg16"``: torchvision's ``VGG16_Weights.IMAGENET1K_V1``, in the torch
  hub cache;
* ``"keras-imagenet"`` for ``"vgg16"``: Keras's ``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``
  in the Keras cache (``$KERAS_HOME/models`` or ``~/.keras/models``), which the authors started from.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .errors import WeightsNotFoundError

NAMED_WEIGHTS = ("imagenet", "keras-imagenet")
KERAS_VGG16_NOTOP = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_VGG16_URL = f"https://storage.googleapis.com/tensorflow/keras-applications/vgg16/{KERAS_VGG16_NOTOP}"
# Keys a full classification checkpoint carries beyond the convolutional trunk.
_HEAD_PREFIXES = ("classifier.", "fc.", "head.", "avgpool.")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` / ``.pth`` / ``.pt`` / ``.bin`` file into a flat state dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{path}: not a readable safetensors file ({err}); was it truncated?") from err
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


def resolve_encoder_weights(weights: str | os.PathLike, encoder: str | None = None) -> dict[str, torch.Tensor]:
    """A state dict for ``weights``: a named set (see module docs) or a file (``.h5`` = Keras VGG-16)."""
    if str(weights) in NAMED_WEIGHTS:
        if encoder != "vgg16":
            raise WeightsNotFoundError(f"encoder_weights={weights!r} exists for 'vgg16' only (and timm encoders)")
        return vgg16_imagenet_state() if weights == "imagenet" else keras_vgg16_state(keras_vgg16_path())
    path = Path(weights)
    if path.suffix in (".h5", ".hdf5"):
        return keras_vgg16_state(path)
    return read_state_dict(path)


def keras_vgg16_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """VGG-16 convolution weights from a Keras ``.h5`` (no-top weights, or a whole model) as our state dict."""
    from .convert.keras import read_h5_datasets, vgg16_conv_weights

    path = Path(path)
    return {k: torch.from_numpy(v) for k, v in vgg16_conv_weights(read_h5_datasets(path), path).items()}


def keras_vgg16_path() -> Path:
    """Where Keras caches its VGG-16 no-top weights; a ``WeightsNotFoundError`` says so when absent."""
    target = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / KERAS_VGG16_NOTOP
    if not target.is_file():
        raise WeightsNotFoundError(
            f"Keras ImageNet VGG-16 weights are not available locally. Download {KERAS_VGG16_URL} on a machine "
            f"with network access and copy it to {target} (set KERAS_HOME to move that folder), or pass "
            "encoder_weights='/path/to/vgg16_notop.h5'."
        )
    return target


def vgg16_imagenet_state() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet VGG-16 weights, from the local torch hub cache if present.

    Downloads only when the network is allowed (``SLICEVID_OFFLINE`` unset). When the file
    is missing offline, the error names the exact path to copy it to.
    """
    from torchvision.models import VGG16_Weights

    url = VGG16_Weights.IMAGENET1K_V1.url
    target = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if not target.is_file():
        if os.environ.get("SLICEVID_OFFLINE"):
            raise WeightsNotFoundError(_missing_vgg_message(url, target))
        try:
            torch.hub.load_state_dict_from_url(url, progress=True, map_location="cpu")
        except Exception as err:
            raise WeightsNotFoundError(_missing_vgg_message(url, target) + f" (download failed: {err})") from err
    return read_state_dict(target)


def _missing_vgg_message(url: str, target: Path) -> str:
    return (
        f"ImageNet VGG-16 weights are not available locally. Download {url} "
        f"on a machine with network access and copy it to {target} (set TORCH_HOME to move "
        "that folder), or pass encoder_weights='/path/to/vgg16.pth'."
    )
