"""Labels from a CSV file: one row per scan, one or several target columns, any class names.

A scan is named by its path relative to the scan folder, with or without ``.nii``/``.nii.gz``
(``TRN_0001``, ``TRN_0001.nii.gz`` and ``P1/ct.nii.gz`` are all fine), and that relative path is
its id: ``P1/ct.nii.gz`` and ``P2/ct.nii.gz`` are two scans.

Each head reads its columns as one of four kinds of target:

========  =================================================  ==========================
kind      cell values                                        missing (empty cell)
========  =================================================  ==========================
class     a class name, or an integer (see below)            -1
binary    1/0, true/false, yes/no, positive/negative         NaN
level     a level name, or an integer                        -1
number    a number                                           NaN
========  =================================================  ==========================

Integers name classes and levels in one of two numberings. Without given names, the sorted
distinct integers are the classes (``"1"`` ... ``"5"`` for the ImageCLEF CSV). With given names,
integers count from 1 (the ImageCLEF numbering: ``TypeOfTB`` 1..5) unless the column holds a
0, when they count from 0; anything outside the range is an error naming the line.
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from .._registry import check_choice, suggest
from ..errors import DataError
from ..keys import TARGET
from .ct import NIFTI_SUFFIXES

__all__ = [
    "FILE_COLUMN",
    "LABEL_KINDS",
    "TARGET",
    "HeadColumns",
    "LabelTable",
    "read_csv_rows",
    "read_label_table",
    "scan_id",
]

FILE_COLUMN = "FileName"
"""The labels CSV's column of scan names unless another is given (the ImageCLEF CSV's)."""
LabelKind = Literal["class", "binary", "level", "number"]
LABEL_KINDS = ("class", "binary", "level", "number")
_TRUE, _FALSE = {"1", "1.0", "true", "yes", "y", "positive", "pos"}, {"0", "0.0", "false", "no", "n", "negative", "neg"}


def scan_id(name: str | os.PathLike, root: str | os.PathLike | None = None) -> str:
    """A scan's id: its path relative to ``root`` (posix), without ``.nii``/``.nii.gz``.

    ``scan_id("TRN_0001.nii.gz")`` is ``"TRN_0001"``; ``scan_id(root / "P1" / "ct.nii.gz", root)`` is ``"P1/ct"``.

    Args:
        name: a scan's file or folder name, or its path.
        root: the folder the ids are relative to (``None``: the name alone).
    """
    path = Path(name)
    if root is not None:
        try:
            path = path.relative_to(root)
        except ValueError:
            path = Path(os.path.relpath(path, root)) if path.is_absolute() else path
    text = path.as_posix()
    for suffix in NIFTI_SUFFIXES:
        if text.lower().endswith(suffix):
            return text[: -len(suffix)]
    return text


@dataclass(frozen=True)
class HeadColumns:
    """What one head reads from the labels CSV.

    Attributes:
        kind: ``"class"``, ``"binary"`` (one column per label), ``"level"`` or ``"number"``.
        columns: the CSV columns.
        names: class or level names in order (``None``: from the column's values).
        first: the integer naming the first of ``names`` (1 in the ImageCLEF numbering); ``None``:
            0 if the column holds a 0, else 1.
    """

    kind: LabelKind
    columns: tuple[str, ...]
    names: tuple[str, ...] | None = None
    first: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", check_choice("kind", self.kind, LABEL_KINDS))
        object.__setattr__(self, "columns", tuple(self.columns))
        if not self.columns or (self.kind != "binary" and len(self.columns) != 1):
            raise DataError(f"a {self.kind!r} head reads exactly one column, got {list(self.columns)}")
        if self.names is not None:
            object.__setattr__(self, "names", tuple(str(n) for n in self.names))


@dataclass
class LabelTable:
    """The rows of a labels CSV: scan names (as written), and each head's targets and names.

    Attributes:
        names: the scan name of each row, as the CSV writes it.
        targets: per head, an array of targets (``(rows,)``, or ``(rows, labels)`` for binary heads).
        head_names: per head, its class, label or level names (the score's name for numbers).
        lines: the CSV line of each row (for messages).
        columns: the raw cells of each other column asked for (a split or group column).
    """

    names: list[str]
    targets: dict[str, np.ndarray]
    head_names: dict[str, tuple[str, ...]]
    lines: list[int] = field(default_factory=list)
    columns: dict[str, list[str]] = field(default_factory=dict)

    def select(self, keep: Sequence[int]) -> LabelTable:
        """The rows ``keep``, in that order."""
        keep = list(keep)
        return LabelTable(
            [self.names[i] for i in keep],
            {head: values[keep] for head, values in self.targets.items()},
            self.head_names,
            [self.lines[i] for i in keep],
            {column: [cells[i] for i in keep] for column, cells in self.columns.items()},
        )


def read_label_table(
    csv_path: str | os.PathLike,
    file_column: str,
    heads: Mapping[str, HeadColumns],
    extra: Sequence[str] = (),
) -> LabelTable:
    """Read a labels CSV into one target array per head (and the raw cells of ``extra`` columns).

    A scan listed twice with the same targets is kept once (with a warning); two rows that give
    one scan different targets are an error naming both lines.

    Args:
        csv_path: the labels file.
        file_column: its column of scan names.
        heads: head name -> the columns that feed it and how to read them.
        extra: other columns to keep as text (a split column, a patient column).

    Raises:
        DataError: the CSV is missing, not UTF-8, lacks a column (close names are suggested), lists
            no scan, holds an empty file name or a value its head cannot read (the line is named),
            or gives one scan two different targets.
    """
    csv_path = Path(csv_path)
    columns, lines = read_csv_rows(csv_path)
    wanted = [file_column, *(c for spec in heads.values() for c in spec.columns), *extra]
    missing = [c for c in wanted if c not in columns]
    if missing:
        hint = suggest(missing[0], columns)
        raise DataError(
            f"{csv_path}: missing column(s) {missing}; found {columns}.{hint} "
            "Pass --file-column / --label-column(s) / --split-column / --group-column (file_column=, heads=, "
            "split_column=, group_column= in Python) to match your CSV."
        )
    rows: dict[str, int] = {}  # scan id -> row index
    names, cells, line_numbers, merged = [], {h: [] for h in heads}, [], []
    kept = {column: [] for column in extra}
    for line, raw in lines:
        name = raw[file_column]
        if not name:
            raise DataError(f"{csv_path}, line {line}: empty {file_column!r}; every row must name a scan")
        row_cells = {head: tuple(raw[c] for c in spec.columns) for head, spec in heads.items()}
        key = scan_id(name)
        if key in rows:
            first = rows[key]
            earlier = {head: cells[head][first] for head in heads}
            if earlier != row_cells:
                then, now = _describe(heads, earlier), _describe(heads, row_cells)
                where = f"on line {line_numbers[first]} and {now} on line {line}"
                raise DataError(f"{csv_path}: {key} has label {then} {where}")
            merged.append(f"{name} (line {line} repeats line {line_numbers[first]})")
            continue
        rows[key] = len(names)
        names.append(name)
        line_numbers.append(line)
        for head in heads:
            cells[head].append(row_cells[head])
        for column in extra:
            kept[column].append(raw[column])
    if merged:
        warnings.warn(f"{csv_path}: merged {len(merged)} duplicate row(s): {'; '.join(merged[:5])}", stacklevel=3)
    targets, head_names = {}, {}
    for head, spec in heads.items():
        targets[head], head_names[head] = _parse_head(csv_path, spec, cells[head], line_numbers, names)
    return LabelTable(names, targets, head_names, line_numbers, kept)


def _describe(heads: Mapping[str, HeadColumns], cells: Mapping[str, tuple[str, ...]]) -> str:
    """``"3"`` for one column, ``"TypeOfTB=3, Severity=low"`` for several."""
    pairs = [(c, v) for head, spec in heads.items() for c, v in zip(spec.columns, cells[head], strict=True)]
    return pairs[0][1] if len(pairs) == 1 else ", ".join(f"{c}={v}" for c, v in pairs)


def read_csv_rows(csv_path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Column names and ``(line, {column: stripped cell})`` rows."""
    if not csv_path.is_file():
        kind = "a folder" if csv_path.is_dir() else "not found"
        raise DataError(f"{csv_path}: label CSV {kind}; expected a CSV file")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            raw_rows = list(reader)
    except UnicodeDecodeError as err:
        raise DataError(f"{csv_path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8") from err
    except csv.Error as err:
        raise DataError(f"{csv_path}: not a readable CSV ({err})") from err
    if not raw_rows:
        raise DataError(f"{csv_path}: lists no scans (only a header)")
    rows = [
        (line, {(k or "").strip(): (v or "").strip() for k, v in raw.items() if not isinstance(v, list)})
        for line, raw in enumerate(raw_rows, start=2)
    ]
    return columns, rows


def _parse_head(
    csv_path: Path, spec: HeadColumns, cells: list[tuple[str, ...]], lines: list[int], scans: list[str]
) -> tuple[np.ndarray, tuple[str, ...]]:
    if spec.kind == "binary":
        return _binary(csv_path, spec, cells, lines), spec.columns
    if spec.kind == "number":
        return _numbers(csv_path, spec, cells, lines), spec.columns
    values = [c[0] for c in cells]
    names = _category_names(csv_path, spec, values)
    return _categories(csv_path, spec, values, names, lines, scans), names


def _binary(csv_path: Path, spec: HeadColumns, cells, lines) -> np.ndarray:
    targets = np.full((len(cells), len(spec.columns)), np.nan, dtype=np.float32)
    for row, (values, line) in enumerate(zip(cells, lines, strict=True)):
        for k, value in enumerate(values):
            lowered = value.lower()
            if lowered in _TRUE or lowered in _FALSE:
                targets[row, k] = 1.0 if lowered in _TRUE else 0.0
            elif value:
                raise DataError(
                    f"{csv_path}, line {line}: {spec.columns[k]!r} is {value!r}; expected 1/0, yes/no, "
                    "true/false, or an empty cell for a missing label"
                )
    empty = [column for column, values in zip(spec.columns, targets.T, strict=True) if np.isnan(values).all()]
    if empty:
        raise DataError(f"{csv_path}: column(s) {empty} hold no label at all; a head cannot learn from them")
    return targets


def _numbers(csv_path: Path, spec: HeadColumns, cells, lines) -> np.ndarray:
    targets = np.full(len(cells), np.nan, dtype=np.float32)
    for row, ((value,), line) in enumerate(zip(cells, lines, strict=True)):
        if not value:
            continue
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise DataError(f"{csv_path}, line {line}: {spec.columns[0]!r} is {value!r}; expected a finite number")
        targets[row] = number
    return targets


def _category_names(csv_path: Path, spec: HeadColumns, values: list[str]) -> tuple[str, ...]:
    """Given names, else the sorted distinct integers, else (classes only) the sorted distinct names."""
    if spec.names is not None:
        return spec.names
    present = sorted({v for v in values if v})
    if not present:
        raise DataError(f"{csv_path}: column {spec.columns[0]!r} holds no label at all")
    if all(_is_int(v) for v in present):
        return tuple(str(i) for i in sorted({int(float(v)) for v in present}))
    if spec.kind == "level":
        raise DataError(
            f"{csv_path}: the levels in {spec.columns[0]!r} are names ({present}); give them in order "
            "(--levels low,medium,high; names= in Python)"
        )
    return tuple(present)


def _categories(
    csv_path: Path, spec: HeadColumns, values: list[str], names: tuple[str, ...], lines: list[int], scans: list[str]
) -> np.ndarray:
    """Indices into ``names``: integers read as names (no names given) or counted from 0 or 1 (names given)."""
    by_name = {name.lower(): index for index, name in enumerate(names)}
    integers_name_themselves = spec.names is None and all(_is_int(n) for n in names)
    base = spec.first if spec.first is not None else int(not any(_is_int(v) and float(v) == 0 for v in values))
    targets = np.full(len(values), -1, dtype=np.int64)
    for row, (value, line, scan) in enumerate(zip(values, lines, scans, strict=True)):
        if not value:
            continue
        number = int(float(value)) if _is_int(value) else None
        if number is None and value.lower() in by_name:
            targets[row] = by_name[value.lower()]
        elif number is not None and integers_name_themselves:
            targets[row] = by_name[str(number)]
        elif number is not None and 0 <= number - base < len(names):
            targets[row] = number - base
        else:
            expected = f"{base}..{base + len(names) - 1} ({', '.join(names)})"
            raise DataError(
                f"{csv_path}, line {line}: unknown label {value!r} for {scan!r} in {spec.columns[0]!r}; "
                f"expected {expected}"
            )
    return targets


def _is_int(value: str) -> bool:
    try:
        number = float(value)
    except ValueError:
        return False
    return math.isfinite(number) and number == int(number)
