"""A stage described once: how its model starts and trains, and the one function that runs each kind.

The command line (``slicevid pretrain``, ``finetune``, ``cv``) and the runner (``slicevid run``,
the demo, the benchmarks) both describe a stage's start as a `ModelStart` and run it through
`run_pretraining()` or `run_finetuning()`, so a setting cannot reach one path and miss the other
(a pretrained model's slice execution, say, which a model loaded from a folder would otherwise
drop).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import Dataset

from ..model import SliceSequenceClassifier
from ..model_config import Architecture, Heads, ModelConfig, SliceExecution
from ..presets import Init, apply_init
from ..tasks import SliceSupervision, Task
from ..train import FitResult, TrainConfig, finetune, pretrain


@dataclass(frozen=True)
class ModelStart:
    """How a stage's model starts: a new model of ``architecture``, or the model saved in ``pretrained``.

    Attributes:
        architecture: the layers of a new model (the paper's by default).
        encoder_weights: a new model's encoder weights: "imagenet", "keras-imagenet", a file, or None (random).
        init: how a new model's other layers start: "pytorch", or "keras" (as the authors' model).
        execution: how slices run through the encoder, for a new and a pretrained model alike.
        pretrained: a ``save_pretrained`` folder to start from instead (its architecture and weights).
    """

    architecture: Architecture = field(default_factory=Architecture)
    encoder_weights: str | None = None
    init: Init = "pytorch"
    execution: SliceExecution = field(default_factory=SliceExecution)
    pretrained: str | os.PathLike | None = None

    def build(self, heads: Heads, seed: int) -> SliceSequenceClassifier:
        """The starting model: the pretrained one (its own heads), or a new one with ``heads``, seeded."""
        if self.pretrained is not None:
            return SliceSequenceClassifier.from_pretrained(self.pretrained, execution=self.execution)
        torch.manual_seed(seed)  # the same seed builds the same weights
        model = SliceSequenceClassifier(
            ModelConfig(self.architecture, heads), encoder_weights=self.encoder_weights, execution=self.execution
        )
        return apply_init(model, self.init, pretrained_encoder=self.encoder_weights is not None)


def from_scratch_advice(start: ModelStart, config: TrainConfig) -> str | None:
    """One line of advice when a recurrent model starts from random weights with the paper's plain recipe.

    The paper's SGD at 1e-3 fine-tunes a pretrained LSTM; started from random weights on a small
    set, the same recipe often predicts one class for every scan. ``None`` when the start or the
    settings differ from that.

    Args:
        start: how the model starts.
        config: the training settings.
    """
    plain = start.pretrained is None and start.encoder_weights is None and config.optimizer == "sgd"
    if not (plain and start.architecture.aggregator in ("lstm", "gru") and start.architecture.feature_norm == "none"):
        return None
    return (
        "note: a recurrent model from random weights with SGD at the paper's 1e-3 often learns nothing on small data; "
        "what learns from scratch: --aggregator attention --feature-norm layernorm --optimizer adamw --lr 1e-3 "
        "--precise-bn 4 (or --pretrained, as the paper fine-tunes)"
    )


def run_pretraining(
    start: ModelStart, train_data: Dataset, val_data: Dataset | None, config: TrainConfig, **options: Any
) -> FitResult:
    """Video pretraining from ``start``: one class per clip class, the encoder frozen (see `pretrain`).

    Args:
        start: how the model starts (its heads get one output per clip class).
        train_data: labelled clips ``(clip (1, T, H, W), class)`` with ``classes``.
        val_data: validation clips.
        config: training settings (``out_dir`` receives the run).
        **options: `pretrain`'s other keywords: ``freeze_encoder``, ``record``, ``callbacks``.
    """
    return pretrain(
        start.build(Heads.of(len(train_data.classes)), config.seed), train_data, val_data, config, **options
    )


def run_finetuning(
    start: ModelStart,
    train_data: Dataset,
    val_data: Dataset | None,
    config: TrainConfig,
    *,
    tasks: Mapping[str, Task],
    slice_supervision: SliceSupervision | None = None,
    **options: Any,
) -> tuple[SliceSequenceClassifier, FitResult]:
    """Fine-tuning from ``start`` for ``tasks`` (new heads where a pretrained model's differ; see `finetune`).

    Args:
        start: how the model starts (a new model gets ``tasks``' heads; a pretrained one keeps its
            other weights and gets new heads where its own differ).
        train_data: labelled scans.
        val_data: validation scans (they choose the kept epoch, the thresholds, the temperature).
        config: training settings (``out_dir`` receives the run).
        tasks: the heads to train, by name.
        slice_supervision: a per-slice head to train from the data's slice targets.
        **options: `finetune`'s other keywords: ``freeze_encoder``, ``record``, ``callbacks``.
    """
    model = start.build(Heads(dict(tasks), slice_supervision), config.seed)
    return finetune(model, train_data, val_data, config, tasks=tasks, slice_supervision=slice_supervision, **options)
