"""What data a model was trained on: saved with every checkpoint, so later commands use the same data.

``evaluate`` on a run's checkpoint scores that run's validation scans (by id, not by recomputing
a split that may have changed); ``--resume`` refuses data settings that differ from the saved
ones; ``predict`` refuses a model trained on video clips for CT scans. A dataset describes its
own provenance (``data_spec()``); datasets that cannot (plain tensors) record ``kind="other"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from ..errors import CheckpointError

DataKind = Literal["ct", "video", "medmnist", "other"]


@dataclass(frozen=True)
class TrainingData:
    """Where a model's training and validation samples came from, and how they were split.

    Attributes:
        kind: ``"ct"`` (scans), ``"video"`` (action clips), ``"medmnist"`` (a MedMNIST 3D file) or ``"other"``.
        root: the scan or video folder (the ``.npz`` file for MedMNIST).
        labels_csv: the labels file (CT).
        file_column: its column of scan names.
        label_columns: per head, the columns of its targets.
        first_label: the integer of the first class where integers name given classes (``None``: inferred).
        val_fraction: validation share of the split.
        seed: seed of the split.
        split_by: how the split was drawn (``"stratified"``, ``"random"``, ``"group"``, ``"keras"``,
            ``"column"``, ``"official"``).
        split_column: the labels-CSV column that named each scan's part, if one did.
        group_column: the labels-CSV column of group ids (patients) the split kept together, if any.
        folds: the number of cross-validation folds, if the run was one fold of them.
        fold: which fold was held out.
        exclude: scan ids left out before the split.
        label_fraction: share of the training split that was used (a learning curve's subsets).
        train_count: training samples.
        val_ids: ids of the validation samples, in order (what ``evaluate`` scores by default).
    """

    kind: DataKind = "other"
    root: str | None = None
    labels_csv: str | None = None
    file_column: str | None = None
    label_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    first_label: int | None = None
    val_fraction: float | None = None
    seed: int | None = None
    split_by: str | None = None
    split_column: str | None = None
    group_column: str | None = None
    folds: int | None = None
    fold: int = 0
    exclude: tuple[str, ...] = ()
    label_fraction: float = 1.0
    train_count: int = 0
    val_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["label_columns"] = {head: list(columns) for head, columns in self.label_columns.items()}
        for name in ("exclude", "val_ids"):
            values[name] = list(values[name])
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainingData:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise CheckpointError(f"{source}: unknown training-data key(s) {unknown}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        values["label_columns"] = {head: tuple(c) for head, c in (values.get("label_columns") or {}).items()}
        return cls(**values)

    def split_settings(self) -> dict[str, Any]:
        """What decides which samples train and which validate (compared on ``--resume``)."""
        return {
            "root": self.root,
            "labels_csv": self.labels_csv,
            "file_column": self.file_column,
            "label_columns": self.label_columns,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "split_by": self.split_by,
            "split_column": self.split_column,
            "group_column": self.group_column,
            "folds": self.folds,
            "fold": self.fold,
            "exclude": self.exclude,
        }
