"""The command line's label options as one dataclass: which labels-CSV columns feed which heads.

`LabelSettings` generates the options of ``finetune``, ``cv`` and ``evaluate`` (help from its
docstring, defaults from its fields), is saved in every run's ``config.yaml`` through them, and
turns into the `HeadColumns` the data reads. Every list it takes is checked here, in one line:
an empty name (a trailing comma), a repeated head, names given to a task that has none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._registry import check_choice
from ..data.imageclef import TB_CLASSES, TB_FILE_COLUMN, TB_LABEL_COLUMN
from ..data.labels import TARGET, HeadColumns
from ..errors import ConfigError
from ..tasks import TASK_KINDS

HEAD_SYNTAX = "NAME=KIND:COLUMN[,COLUMN...][:NAME,NAME...]"


@dataclass(frozen=True)
class LabelSettings:
    """Which columns of the labels CSV hold the targets, and what they mean.

    Attributes:
        file_column: CSV column of scan names (paths inside --scans, extension optional).
        label_column: CSV column of a one-head model's targets: class names or integers, levels, or scores.
        task: what one head predicts: one class (multiclass), 0/1 labels (multilabel, with --label-columns),
            an ordered level (ordinal) or a score (regression).
        label_columns: comma-separated 0/1 columns of a multilabel head (empty cells are missing labels,
            left out of the loss).
        classes: comma-separated class names in label order; integers in the CSV then count from 1 (from 0
            if one is 0). Not given: the TB types for the column TypeOfTB (numbered 1..5), else the
            column's values.
        levels: comma-separated level names, lowest first (ordinal task).
        head: one head of a several-head model, e.g. type=multiclass:TypeOfTB,
            findings=multilabel:left,right or severity=ordinal:Severity:low,medium,high (names in order;
            repeatable; replaces --task).
        flip_pairs: comma-separated LEFT:RIGHT label pairs that swap in a left-right flip (for --tta flip).
    """

    file_column: str = TB_FILE_COLUMN
    label_column: str = TB_LABEL_COLUMN
    task: str = field(default="multiclass", metadata={"choices": tuple(TASK_KINDS)})
    label_columns: str | None = None
    classes: str | None = None
    levels: str | None = None
    head: tuple[str, ...] = field(default=(), metadata={"action": "append", "metavar": "NAME=KIND:COLUMNS[:NAMES]"})
    flip_pairs: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", check_choice("task", self.task, TASK_KINDS))
        object.__setattr__(self, "head", tuple(self.head or ()))

    def head_columns(self) -> dict[str, HeadColumns]:
        """The heads the labels CSV feeds: the ``--head`` options, else one ``--task`` head.

        Raises:
            ConfigError: a malformed or repeated head, an empty name, or names the task cannot take.
        """
        if self.head:
            heads: dict[str, HeadColumns] = {}
            for text in self.head:
                name, spec = parse_head(text)
                if name in heads:
                    raise ConfigError("--head", f"names {name!r} twice; every head needs its own name")
                heads[name] = spec
            return heads
        kind = TASK_KINDS[self.task].column_kind
        if self.levels and self.task != "ordinal":
            raise ConfigError("--levels", f"names the levels of an ordinal task, not of --task {self.task}")
        if self.label_columns and self.task != "multilabel":
            raise ConfigError("--label-columns", f"are the 0/1 columns of --task multilabel, not of --task {self.task}")
        if self.task == "multilabel":
            if not self.label_columns:
                raise ConfigError(
                    "--label-columns", "are needed with --task multilabel: the 0/1 columns, comma-separated"
                )
            return {TARGET: HeadColumns(kind, names_in(self.label_columns, "--label-columns"))}
        if kind == "class":
            if self.classes:
                return {TARGET: HeadColumns(kind, (self.label_column,), names_in(self.classes, "--classes"))}
            if self.label_column == TB_LABEL_COLUMN:
                return {TARGET: HeadColumns(kind, (self.label_column,), TB_CLASSES, 1)}
            return {TARGET: HeadColumns(kind, (self.label_column,))}
        if self.classes:
            raise ConfigError("--classes", f"name the classes of --task multiclass, not of --task {self.task}")
        levels = names_in(self.levels, "--levels") if self.levels else None
        return {TARGET: HeadColumns(kind, (self.label_column,), levels)}

    def flip_label_pairs(self) -> list[tuple[str, str]]:
        """The ``--flip-pairs`` as ``(left, right)`` pairs.

        Raises:
            ConfigError: a pair that is not ``LEFT:RIGHT``.
        """
        pairs = []
        for text in names_in(self.flip_pairs, "--flip-pairs") if self.flip_pairs else ():
            parts = tuple(p.strip() for p in text.split(":"))
            if len(parts) != 2 or not all(parts):
                raise ConfigError("--flip-pairs", f"takes LEFT:RIGHT pairs, got {text!r}")
            pairs.append(parts)
        return pairs


def names_in(text: str, flag: str) -> tuple[str, ...]:
    """Comma-separated names, each stripped; an empty one (``a,,b``, a trailing comma) or a repeat is refused."""
    names = tuple(part.strip() for part in text.split(","))
    if not all(names):
        raise ConfigError(flag, f"{text!r} holds an empty name (two commas, or one at an end)")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(flag, f"{text!r} names {repeated} more than once")
    return names


def parse_head(text: str) -> tuple[str, HeadColumns]:
    """``"findings=multilabel:left,right"`` -> ``("findings", HeadColumns("binary", ("left", "right")))``.

    A third part names classes or levels in order: ``"severity=ordinal:Severity:low,medium,high"``.
    """
    try:
        name, rest = text.split("=", 1)
        kind, columns, *names = rest.split(":")
    except ValueError:
        raise ConfigError("--head", f"{text!r} must look like {HEAD_SYNTAX}") from None
    if kind not in TASK_KINDS:
        raise ConfigError("--head", f"{text!r}: the kind must be one of {', '.join(TASK_KINDS)}")
    if len(names) > 1:
        raise ConfigError("--head", f"{text!r} has more than three parts ({HEAD_SYNTAX})")
    if names and kind in ("multilabel", "regression"):
        raise ConfigError("--head", f"{text!r}: a {kind} head takes no names after its columns")
    listed = names_in(names[0], "--head") if names else None
    return name.strip(), HeadColumns(TASK_KINDS[kind].column_kind, names_in(columns, "--head"), listed)
