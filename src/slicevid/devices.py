"""Where and in which precision to run: device names and the autocast context.

Training, evaluation, feature extraction and prediction all resolve devices and autocast
here, so ``"auto"`` means the same thing everywhere.
"""

from __future__ import annotations

import contextlib
import os

import torch

from .errors import ConfigError

AMP_MODES = ("auto", "bf16", "off")
_AUTOCAST_DEVICES = ("cpu", "cuda", "mps", "xpu")


def resolve_device(name: str | torch.device) -> torch.device:
    """``"auto"`` -> this process's GPU if there is one (``LOCAL_RANK`` under torchrun), else the CPU.

    Raises:
        ConfigError: the name is not a device, or names a GPU this machine does not have.
    """
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(
            "device", f"{name!r} is not a device name; expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device", f"{name!r}: no CUDA GPU is available on this machine; use 'cpu' or 'auto'")
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if device.index >= torch.cuda.device_count():
            raise ConfigError("device", f"{name!r}: this machine has {torch.cuda.device_count()} GPU(s)")
    elif device.type != "cpu" and not _available(device.type):
        raise ConfigError("device", f"{name!r}: {device.type} is not available on this machine")
    return device


def _available(kind: str) -> bool:
    backend = getattr(torch, kind, None) or getattr(torch.backends, kind, None)
    return bool(backend is not None and getattr(backend, "is_available", lambda: False)())


def autocast_dtype_for(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for an ``amp`` mode: bf16 for ``"bf16"`` (and ``"auto"`` on CUDA), else none."""
    if amp == "bf16" or (amp == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` in ``dtype`` on ``device``, or a no-op when ``dtype`` is ``None``."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type if device.type in _AUTOCAST_DEVICES else "cpu", dtype=dtype)


def without_autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Turn autocast off inside a region (recurrent layers run in float32)."""
    return torch.autocast(device.type if device.type in _AUTOCAST_DEVICES else "cpu", enabled=False)
