"""``TrainConfig``: every training setting in one dataclass, saved next to each run.

Defaults follow the ViPTT-Net recipe: SGD with learning rate 0.001, batch size 2,
cross-entropy, ReduceLROnPlateau on the validation loss (factor 0.1, patience 5) and early
stopping (patience 8) that restores the best weights.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .._io import atomic_write_text

AUGMENTATIONS = ("none", "paper", "notebook")
AMP_MODES = ("auto", "bf16", "off")


@dataclass
class TrainConfig:
    """Training settings.

    Attributes:
        epochs: maximum number of epochs.
        batch_size: samples per step on each process.
        lr: SGD learning rate.
        momentum: SGD momentum (Keras' default SGD, as in the paper, has none).
        weight_decay: SGD weight decay.
        plateau_factor: learning-rate factor when the validation loss stalls.
        plateau_patience: epochs without improvement before reducing the learning rate.
        early_stopping_patience: epochs without improvement before stopping (0 disables).
        class_weights: weight the loss by balanced class weights of the training split ("CW").
        augment: ``"none"``, ``"paper"`` (rotation from the paper's angles, "AUG") or
            ``"notebook"`` (the authors' notebook variant).
        seed: seed for initialisation order, shuffling, augmentation and dropout.
        num_workers: DataLoader worker processes.
        grad_accum: batches per optimizer step.
        channels_last: run the slice encoder in channels-last memory format.
        amp: ``"auto"`` (bf16 autocast on CUDA, off on CPU), ``"bf16"`` or ``"off"``.
            The recurrent aggregator always runs in float32.
        compile: wrap the model in ``torch.compile``.
        feature_cache: when everything before the aggregator is frozen and there is no
            augmentation, compute slice features once and train on them.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
        out_dir: run folder for checkpoints, metrics, plots; ``None`` writes nothing.
        resume: continue from ``out_dir``'s last checkpoint if there is one.
        progress: show progress bars.
    """

    epochs: int = 100
    batch_size: int = 2
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    plateau_factor: float = 0.1
    plateau_patience: int = 5
    early_stopping_patience: int = 8
    class_weights: bool = False
    augment: str = "none"
    seed: int = 0
    num_workers: int = 0
    grad_accum: int = 1
    channels_last: bool = False
    amp: str = "auto"
    compile: bool = False
    feature_cache: bool = False
    device: str = "auto"
    out_dir: str | None = None
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {self.augment!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        for name in ("epochs", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | os.PathLike) -> None:
        """Write as YAML (``.yaml``/``.yml``) or JSON (anything else), atomically."""
        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))
        else:
            atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a config written by :meth:`save` (or by hand); unknown keys are an error."""
        return cls.from_dict(read_config_file(path))

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown TrainConfig keys {unknown}; valid keys: {sorted(known)}")
        return cls(**values)


def read_config_file(path: str | os.PathLike) -> dict:
    """A mapping from a YAML or JSON file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        values = yaml.safe_load(text) or {}
    else:
        values = json.loads(text)
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(values).__name__}")
    return values
