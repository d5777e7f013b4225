"""``TrainConfig``: every training setting in one dataclass, saved next to each run.

It is the single source of the training defaults: the command line builds its training
options from these fields (help from the docstring, defaults and choices from the types),
and ``--config`` files use the same names.

Defaults follow the ViPTT-Net recipe: SGD with learning rate 0.001, batch size 2,
cross-entropy, a learning-rate cut on a validation-loss plateau (factor 0.1, patience 5) and
early stopping (patience 8) that restores the best weights, all counted as Keras counts.

How slices run through the encoder (chunking, checkpointing, channels-last) is not a training
setting: it belongs to the model (`SliceExecution`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

from .._io import atomic_write_text
from .._registry import check_literal_fields
from ..augment import Augmentation
from ..errors import ConfigError
from ..tasks import ClassWeightMode

Optimizer = Literal["sgd", "adam", "adamw"]
Augment = Literal["none", Augmentation]
Amp = Literal["auto", "bf16", "off"]
ThresholdRule = Literal["youden", "sensitivity", "argmax"]
Calibration = Literal["none", "temperature"]


@dataclass
class TrainConfig:
    """Training settings.

    Attributes:
        epochs: maximum number of epochs.
        batch_size: samples per step on each process.
        optimizer: "sgd" (the paper's), "adam" or "adamw".
        lr: learning rate.
        momentum: SGD momentum (Keras's default SGD, as in the paper, has none).
        weight_decay: weight decay (decoupled for adamw).
        plateau_factor: learning-rate factor when the validation loss stalls.
        plateau_patience: cut the learning rate after this many epochs without improvement.
        plateau_min_delta: an epoch improves only if the validation loss drops by more than this.
        plateau_cooldown: epochs to wait after a cut before counting again.
        early_stopping_patience: stop after this many epochs without a new best monitored value (0: never).
        monitor: what chooses the kept epoch and early stopping: "val_loss" (the paper's) or a validation
            metric such as "val_auc", "val_kappa", "val_mean_auc", "val_qwk", "val_mae" (val_TASK_METRIC with
            several heads). Each metric declares whether larger is better; a name the model's heads do not
            report is refused before the first epoch. The learning-rate plateau always watches the validation
            loss.
        class_weights: weight the loss by balanced class weights of the training split ("CW"); for
            multi-label heads, positives by negatives / positives per label.
        class_weight_mode: "keras" (mean of w[y] * loss, as Keras's class_weight) or "normalized"
            (divided by the sum of w[y], as PyTorch's CrossEntropyLoss(weight=w)).
        augment: "none", "paper" (rotation from the paper's angles, "AUG"), "notebook" (the
            authors' notebook variant) or "torchio" (study-consistent 3D affine and intensity).
        precise_bn: recompute BatchNorm statistics over this many training batches before each
            validation (0 keeps the running averages, which lag when weights change fast).
        threshold: how a two-class head's decision threshold is chosen on the validation scans after
            training, and saved with the model: "youden" (maximise sensitivity + specificity - 1),
            "sensitivity" (the highest threshold reaching target_sensitivity) or "argmax" (none: the more
            probable class, i.e. 0.5). Multi-label heads get per-label thresholds of best F1.
        target_sensitivity: the sensitivity the "sensitivity" threshold rule must reach.
        calibrate: "temperature" fits each multi-class head's softmax temperature on the validation
            scans after training (saved with the model; used by predict and the ONNX export), or "none".
        time_limit: a wall-clock budget: stop after the epoch during which training passed this many
            seconds (not set: only epochs limit the run).
        seed: seed for initialisation order, shuffling, augmentation and dropout.
        drop_last: leave out each epoch's batch that is smaller than ``batch_size``: a model
            whose BatchNorm sees one value per channel (a 3D CNN pooled to 1 x 1 x 1) cannot
            train on a batch of one.
        num_workers: DataLoader worker processes.
        grad_accum: batches per optimizer step.
        amp: "auto" (bf16 autocast on CUDA, off on CPU), "bf16" or "off" (fp32, as Keras).
            Recurrent aggregators always run in float32.
        compile: wrap the model in torch.compile.
        feature_cache: when everything before the aggregator is frozen and there is no
            augmentation, compute slice features once and train on them.
        device: "auto", "cpu", "cuda", "cuda:1" ...
        out_dir: run folder for checkpoints, metrics, plots; None writes nothing.
        resume: continue from out_dir's last checkpoint.
        overwrite: replace what an earlier run left in out_dir.
        progress: show progress bars (the per-epoch lines are printed either way).
        tensorboard: also log every epoch's numbers to TensorBoard, in out_dir/tensorboard
            (needs the tensorboard package).
    """

    epochs: int = 100
    batch_size: int = 2
    optimizer: Optimizer = "sgd"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    plateau_factor: float = 0.1
    plateau_patience: int = 5
    plateau_min_delta: float = 1e-4
    plateau_cooldown: int = 0
    early_stopping_patience: int = 8
    monitor: str = "val_loss"
    class_weights: bool = False
    class_weight_mode: ClassWeightMode = "keras"
    augment: Augment = "none"
    precise_bn: int = 0
    threshold: ThresholdRule = "youden"
    target_sensitivity: float = 0.9
    calibrate: Calibration = "none"
    time_limit: float | None = None
    seed: int = 0
    drop_last: bool = False
    num_workers: int = field(default=0, metadata={"flags": ("--num-workers", "--workers")})
    grad_accum: int = 1
    amp: Amp = "auto"
    compile: bool = False
    feature_cache: bool = False
    device: str = "auto"
    out_dir: str | None = field(
        default=None, metadata={"flags": ("--out",), "help": "run folder: checkpoints, metrics, plots, best/"}
    )
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    tensorboard: bool = False

    def __post_init__(self) -> None:
        check_literal_fields(self)
        for name, low in (
            ("epochs", 1),
            ("batch_size", 1),
            ("grad_accum", 1),
            ("plateau_patience", 1),
            ("early_stopping_patience", 0),
            ("precise_bn", 0),
            ("num_workers", 0),
            ("plateau_cooldown", 0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(name, f"must be an integer >= {low}, got {value!r}")
        for name in ("lr", "momentum", "weight_decay", "plateau_factor", "plateau_min_delta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(name, f"must be a finite number, got {value!r}")
        if not self.lr > 0:
            raise ConfigError("lr", f"must be positive, got {self.lr}")
        if not 0 < self.target_sensitivity <= 1:
            raise ConfigError("target_sensitivity", f"must lie in (0, 1], got {self.target_sensitivity}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ConfigError("time_limit", f"must be a positive number of seconds, got {self.time_limit}")
        if not 0 < self.plateau_factor < 1:
            raise ConfigError("plateau_factor", f"must lie in (0, 1), got {self.plateau_factor}")
        if not (isinstance(self.monitor, str) and self.monitor.startswith("val_")):
            raise ConfigError("monitor", f"must name a validation value such as 'val_loss', got {self.monitor!r}")
        if self.resume and self.overwrite:
            raise ConfigError("resume", "and overwrite exclude each other: continue the run or replace it")

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
        """Read a config written by `save()` (or by hand); unknown keys are an error."""
        return cls.from_dict(read_config_file(path), source=str(path))

    @classmethod
    def from_dict(cls, values: dict, source: str = "TrainConfig") -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}:", f"unknown TrainConfig keys {unknown}; valid keys: {sorted(known)}")
        return cls(**values)


def read_config_file(path: str | os.PathLike) -> dict:
    """A flat mapping of settings from a YAML or JSON file.

    ``.json`` files are read as JSON, every other file as YAML (of which JSON is a part). YAML
    aliases (``*name``) are refused: a few nested ones expand into gigabytes (a "billion laughs").

    Raises:
        ConfigError: the file does not exist or is a folder, is not UTF-8, does not parse, uses an
            alias, or is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("Config file", f"{'is a folder' if path.is_dir() else 'not found'}: {path}")
    try:
        text = path.read_text(encoding="utf-8")
        values = json.loads(text) if path.suffix.lower() == ".json" else _read_yaml(text)
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}:", f"not UTF-8 text ({err})") from err
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}:", f"not valid JSON ({err})") from err
    except ConfigError as err:
        raise ConfigError(f"{path}:", err.reason) from err
    except Exception as err:  # yaml.YAMLError and its many subclasses
        raise ConfigError(f"{path}:", f"not valid YAML ({str(err).splitlines()[0]})") from err
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}:", f"expected a mapping of settings, got {type(values).__name__}")
    return values


def _read_yaml(text: str):
    """YAML without aliases, whose expansion a small file can turn into gigabytes."""
    import yaml

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise ConfigError("YAML", "aliases (*name) are not allowed in slicevid's settings files")
            return super().compose_node(parent, index)

    return yaml.load(text, Loader=NoAliases)
