"""Scans in a folder with targets from a labels CSV, split into training and validation: any task, any classes.

This is the general route for your own data. `ImageCLEFTBT` is this
dataset with the challenge's columns and TB-type numbering; a binary task is
``LabelledScans(root, "labels.csv", label_column="Finding")``, classes named by the column's
values; several heads are ``heads={"type": HeadColumns("class", ("TypeOfTB",)), ...}``.

Scans are found wherever they sit under the folder (`find_scans()`): NIfTI files at any
depth, and folders of DICOM files, one series each. A scan's id is its path relative to the
folder, so per-patient layouts (``P1/ct.nii.gz``, ``P2/ct.nii.gz``) keep their scans apart.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .._registry import check_choice
from ..errors import ConfigError, DataError, warn_skipped
from .cache import check_cache_dir
from .ct import is_nifti
from .labels import FILE_COLUMN, TARGET, HeadColumns, read_label_table, scan_id
from .provenance import TrainingData
from .splits import VAL_FRACTION, SplitSettings, holdout_split, split_parts
from .volumes import CTVolumeDataset

SPLITS = ("train", "val", "all", "test")


def read_exclusions(exclude: Iterable[str] | str | os.PathLike | None) -> set[str]:
    """Scan ids to leave out: given directly, or one per line in a text file (``#`` starts a comment)."""
    if exclude is None:
        return set()
    if isinstance(exclude, (str, os.PathLike)):
        path = Path(exclude)
        if not path.is_file():
            raise DataError(f"{path}: exclusion list not found; expected a text file with one scan name per line")
        exclude = [line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return {scan_id(name) for name in exclude if name}


def resolve_scan(root: Path, name: str) -> Path | None:
    """The file or DICOM folder for ``name`` under ``root`` (extension optional), or ``None``.

    Symbolic links are followed (data managed by DVC or datalad is links), but the *name*
    must stay inside ``root``: ``../x.nii.gz`` or an absolute path is refused.

    Raises:
        DataError: ``name`` points outside ``root``, or names a link that leads nowhere (or in a loop).
    """
    base = os.path.normpath(os.path.abspath(root))
    for candidate in (root / name, root / f"{name}.nii.gz", root / f"{name}.nii"):
        lexical = os.path.normpath(os.path.abspath(candidate))
        if os.path.commonpath([base, lexical]) != base:
            raise DataError(f"{name!r} points outside the scan folder {root}; file names must be inside it")
        if candidate.is_symlink() and not candidate.exists():
            raise DataError(f"{candidate}: a broken symbolic link (or a loop of links)")
        if candidate.exists():
            return candidate
    return None


def _stratified_share(indices: np.ndarray, share: float, seed: int, stratify) -> np.ndarray:
    """``share`` of ``indices``, stratified, in their order."""
    try:
        kept, _ = holdout_split(len(indices), 1 - share, seed, stratify=stratify)
    except DataError as err:
        counts = f" (class counts {np.bincount(np.asarray(stratify)).tolist()})" if stratify is not None else ""
        raise DataError(
            f"label_fraction={share} of {len(indices)} training scans{counts} cannot keep every class: "
            "use a larger fraction or more scans"
        ) from err
    return indices[np.sort(kept)]


def find_scans(root: str | os.PathLike) -> list[Path]:
    """Every scan under ``root``, sorted: NIfTI files at any depth, and folders holding DICOM files.

    A folder that holds only plain files (no NIfTI, no sub-folders) is one DICOM series; so is
    ``root`` itself when it is such a folder.

    Args:
        root: the folder to search (symbolic links followed, at most eight levels deep).

    Raises:
        DataError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: scan folder not found")
    scans: list[Path] = []

    def visit(folder: Path, depth: int) -> bool:
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        files = [p for p in entries if p.is_file()]
        folders = [p for p in entries if p.is_dir()]
        niftis = [p for p in files if is_nifti(p)]
        if not niftis and not folders and files:
            scans.append(folder)
            return True
        scans.extend(niftis)
        if depth < 8:  # symlinked folders may loop; real layouts are shallow
            for sub in folders:
                visit(sub, depth + 1)
        return bool(niftis or folders)

    visit(root, 0)
    return sorted(scans)


class LabelledScans(CTVolumeDataset):
    """Scans with targets from a labels CSV, split into training and validation (stratified).

    Args:
        root: the scan folder (NIfTI files, DICOM series folders, at any depth).
        labels_csv: the labels file; ``None`` with ``split="test"`` lists every scan in ``root``
            unlabelled (targets missing), for prediction.
        split: ``"train"`` / ``"val"`` (the held-out split), ``"all"`` or ``"test"``.
        file_column: the CSV column of scan names (paths relative to ``root``, extension optional).
        label_column: the column of a one-head classifier's classes (names or integers).
        classes: that classifier's class names in order (default: from the column's values).
        first_label: the integer of the first class when integers name given classes (1 in the
            ImageCLEF numbering); ``None``: 0 if the column holds a 0, else 1.
        heads: several heads, or another kind of target: head name -> `HeadColumns`.
        val_fraction: validation share of the split.
        seed: seed of the split.
        label_fraction: with ``split="train"``, keep this share of the training scans (stratified
            as the split, from ``seed``): the smaller labelled sets of a learning curve. The
            validation scans do not change.
        exclude: scans to leave out before splitting: names, or a text file of names.
        on_error: ``"raise"`` or ``"skip"`` rows whose scan is missing (and scans that fail to load).
        split_column: a CSV column naming each scan's part (``train``, ``val``, ``test``): the
            split is that column's, not drawn.
        group_column: a CSV column of group ids (patients): a group's scans never sit in two parts.
        folds: cross-validation: the number of folds; ``split="test"`` is then fold ``fold``, and
            ``"train"``/``"val"`` split the other folds by ``val_fraction``.
        fold: the held-out fold (0 .. folds - 1).
        **kwargs: `CTVolumeDataset` options (``preprocessing``, ``cache_dir``,
            ``slice_targets``, ``transform``, ``workers`` ...).

    A drawn split is stratified by the first class or level head (missing labels form their
    own group), grouped by ``group_column`` when given, and made over the rows in CSV order,
    like scikit-learn's ``train_test_split``. ``split="test"`` with a labels CSV is the test
    part of a split column or the held-out fold; ``"all"`` is every labelled scan.

    A dataset of one labels format is a subclass that sets the class attributes below, the
    defaults of ``label_column``, ``classes`` and ``first_label`` (see `ImageCLEFTBT`).
    """

    default_label_column: ClassVar[str] = "label"
    default_classes: ClassVar[tuple[str, ...] | None] = None
    default_first_label: ClassVar[int | None] = None

    def __init__(
        self,
        root: str | os.PathLike,
        labels_csv: str | os.PathLike | None = None,
        split: str = "train",
        *,
        file_column: str = FILE_COLUMN,
        label_column: str | None = None,
        classes: Sequence[str] | None = None,
        first_label: int | None = None,
        heads: Mapping[str, HeadColumns] | None = None,
        val_fraction: float = VAL_FRACTION,
        seed: int = 0,
        label_fraction: float = 1.0,
        exclude: Iterable[str] | str | os.PathLike | None = None,
        on_error: str = "raise",
        split_column: str | None = None,
        group_column: str | None = None,
        folds: int | None = None,
        fold: int = 0,
        **kwargs: Any,
    ) -> None:
        self.split = check_choice("split", split, SPLITS)
        label_column = label_column or self.default_label_column
        classes = classes if classes is not None else self.default_classes
        first_label = first_label if first_label is not None else self.default_first_label
        if not 0 < label_fraction <= 1:
            raise ConfigError("label_fraction", f"must lie in (0, 1], got {label_fraction}")
        settings = SplitSettings(val_fraction, split_column, group_column, folds, fold)
        check_cache_dir(kwargs.get("cache_dir"))
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"{root}: scan folder not found")
        self.spec = TrainingData(  # absolute paths: evaluate and --resume find the data from any folder
            kind="ct",
            root=os.path.abspath(root),
            labels_csv=os.path.abspath(labels_csv) if labels_csv is not None else None,
            file_column=file_column,
            val_fraction=val_fraction,
            seed=seed,
            split_by="column" if split_column else "stratified",
            split_column=split_column,
            group_column=group_column,
            folds=folds,
            fold=fold,
            exclude=tuple(sorted(read_exclusions(exclude))),
            label_fraction=label_fraction,
        )
        if labels_csv is None:
            if split != "test":
                raise DataError(f"split={split!r} needs labels_csv (--labels-csv); only split='test' runs unlabelled")
            super().__init__(find_scans(root), None, on_error=on_error, classes=classes, root=root, **kwargs)
            self.head_names = {TARGET: tuple(classes or ())}
            return
        heads = dict(heads) if heads else {TARGET: HeadColumns("class", (label_column,), classes, first_label)}
        extra = [column for column in (split_column, group_column) if column]
        table = read_label_table(labels_csv, file_column, heads, extra=extra)
        self.spec = replace(
            self.spec,
            label_columns={head: spec.columns for head, spec in heads.items()},
            first_label=first_label,
        )
        table, skipped = self._locate(root, labels_csv, table, set(self.spec.exclude), on_error)
        if split != "all":
            table = self._part(table, heads, settings, seed, label_fraction, labels_csv)
        sources = [resolve_scan(root, name) for name in table.names]
        one_classifier = list(heads) == [TARGET] and heads[TARGET].kind == "class"  # class indices, not a dict
        super().__init__(
            sources,
            table.targets[TARGET] if one_classifier else None,
            targets=None if one_classifier else table.targets,
            on_error=on_error,
            classes=table.head_names[TARGET] if one_classifier else None,
            root=root,
            **kwargs,
        )
        self.head_names = table.head_names
        if skipped:
            self.skipped = skipped + self.skipped
            warn_skipped("row(s)", [reason for _, reason in skipped])

    def _part(self, table, heads, settings: SplitSettings, seed: int, label_fraction: float, labels_csv):
        """The rows of this dataset's part of the split."""
        if self.split == "test" and settings.split_column is None and settings.folds is None:
            raise DataError(
                f"split='test' of {labels_csv} needs a split column (--split-column) or folds: otherwise every "
                "labelled scan is a training or validation scan; use split='all' to score them all"
            )
        stratify = next((table.targets[h] for h, spec in heads.items() if spec.kind in ("class", "level")), None)
        parts = split_parts(
            len(table.names),
            settings,
            seed,
            stratify=stratify,
            groups=table.columns.get(settings.group_column),
            assigned=table.columns.get(settings.split_column),
            lines=table.lines,
        )
        chosen = parts[self.split]
        if self.split == "train" and label_fraction < 1:
            chosen = _stratified_share(chosen, label_fraction, seed, None if stratify is None else stratify[chosen])
        if len(chosen) == 0:
            raise DataError(f"the {self.split} part of {labels_csv} holds no scan")
        return table.select(chosen)

    def _locate(self, root: Path, labels_csv, table, excluded: set[str], on_error: str):
        """The rows whose scans exist (others raise, or are skipped), with excluded scans left out."""
        unused = excluded - {scan_id(name) for name in table.names}
        if unused:
            warnings.warn(f"excluded scan(s) {sorted(unused)} are not in {labels_csv}", stacklevel=3)
        keep, skipped = [], []
        for index, name in enumerate(table.names):
            if scan_id(name) in excluded:
                continue
            if resolve_scan(root, name) is None:
                reason = f"{root / name}: scan listed in {Path(labels_csv).name} not found"
                if on_error == "raise":
                    raise DataError(reason)
                skipped.append((str(root / name), reason))
                continue
            keep.append(index)
        return table.select(keep), skipped

    def data_spec(self) -> TrainingData:
        """Where this dataset's scans and targets come from, and how they were split."""
        return self.spec

    def class_counts(self, head: str = TARGET) -> np.ndarray:
        """Scans per class of a class head in this split (missing labels not counted)."""
        values = self.labels if self.targets is None else self.targets[head]
        return np.bincount(values[values >= 0], minlength=len(self.head_names[head]))
