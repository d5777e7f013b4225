"""What must not change when a run is resumed, and the one-line refusal when it did.

A resumed run continues the same experiment, so everything that decides its result must equal
what the checkpoint saved: the architecture and heads, the data and how it was split, the
preprocessing and input size, and every training setting except those that only say how long
or where it runs (`RESUMABLE`).
"""

from __future__ import annotations

from typing import Any

from ..model_config import ModelConfig

RESUMABLE = frozenset(
    {"epochs", "time_limit", "device", "num_workers", "progress", "out_dir", "resume", "overwrite", "tensorboard"}
)
"""Training settings a resumed run may change."""


def resume_differences(
    saved_model: ModelConfig, saved_train: dict[str, Any], model: ModelConfig, train: dict[str, Any]
) -> list[str]:
    """``"name: saved vs now"`` for every setting that differs between a checkpoint and this run."""
    differences = saved_model.architecture_differences(model)
    for name in ("tasks", "input_size", "preprocessing"):
        ours, theirs = _described(getattr(saved_model, name)), _described(getattr(model, name))
        if ours != theirs:
            differences.append(f"{name}: {ours} vs {theirs}")
    saved_data, data = saved_model.training_data, model.training_data
    if saved_data is not None and data is not None:
        ours, theirs = saved_data.split_settings(), data.split_settings()
        differences += [f"{key}: {ours[key]!r} vs {theirs[key]!r}" for key in ours if ours[key] != theirs[key]]
    differences += [
        f"{key}: {saved_train[key]!r} vs {value!r}"
        for key, value in train.items()
        if key not in RESUMABLE and key in saved_train and saved_train[key] != value
    ]
    return differences


def _described(value: Any) -> Any:
    """A comparable, printable form of a task mapping (kinds and names), a preprocessing or an input size."""
    if isinstance(value, dict):
        return {name: [task.kind, list(task.names)] for name, task in value.items()}
    return value.params() if hasattr(value, "params") else value
