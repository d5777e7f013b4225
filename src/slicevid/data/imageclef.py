"""The ImageCLEF 2021 tuberculosis-type (TBT) task: a folder of NIfTI scans plus a label CSV.

The challenge CSV has one row per scan: a file name (``FileName``) and the TB type as
1..5 (``TypeOfTB``), mapped here to classes 0..4 in `TB_CLASSES` order. This is one
format among others: `ImageCLEFTBT` is [`LabelledScans`][slicevid.data.LabelledScans] with these
columns and this numbering.

The paper split 916 labelled scans 80/20, stratified, with ``random_state=0`` (732 / 184). The
CSV lists 917: the authors' data held one scan fewer, and which one is not recorded. Pass
``exclude=`` to leave scans out before the split, which is made over the remaining rows in
CSV order (see the reproduction docs for how to find the scan).

The data needs registration with ImageCLEF (imageclef.org, 2021 tuberculosis task); it
cannot be downloaded by slicevid.
"""

from __future__ import annotations

import os

import torch

from ..metrics import balanced_class_weights
from .labelled import LabelledScans
from .labels import FILE_COLUMN, TARGET, HeadColumns, read_label_table

TB_CLASSES = ("Infiltrative", "Focal", "Tuberculoma", "Miliary", "Fibro-cavernous")
TB_FILE_COLUMN, TB_LABEL_COLUMN = FILE_COLUMN, "TypeOfTB"


def read_label_csv(
    csv_path: str | os.PathLike, file_column: str = TB_FILE_COLUMN, label_column: str = TB_LABEL_COLUMN
) -> list[tuple[str, int]]:
    """Rows ``(file name, class index 0..4)`` from a challenge-style label CSV, in file order.

    A scan listed twice with the same label is kept once (with a warning); ``TRN_0001`` and
    ``TRN_0001.nii.gz`` name the same scan.

    Args:
        csv_path: the labels file.
        file_column: its column of scan names.
        label_column: its column of TB types 1..5.

    Raises:
        DataError: the CSV is missing, not UTF-8, lacks a column, lists no scan, holds a label
            outside 1..5, or gives one scan two labels (both lines are named).
    """
    head = HeadColumns("class", (label_column,), TB_CLASSES, first=1)
    table = read_label_table(csv_path, file_column, {TARGET: head})
    return list(zip(table.names, (int(v) for v in table.targets[TARGET]), strict=True))


class ImageCLEFTBT(LabelledScans):
    """ImageCLEF 2021 TBT scans as ``(volume (1, D, H, W), label)`` pairs.

    [`LabelledScans`][slicevid.data.LabelledScans] with the challenge's defaults: the TB type in
    ``TypeOfTB`` (``label_column``), numbered 1..5 (``first_label``) in `TB_CLASSES` order. Its
    arguments are ``LabelledScans``': ``ImageCLEFTBT(root, "labels.csv", "train")``
    is the paper's stratified 80/20 training part (``random_state`` 0 by default); ``labels_csv=None``
    with ``split="test"`` lists every scan in ``root`` unlabelled (label -1), for prediction.
    """

    default_label_column = TB_LABEL_COLUMN
    default_classes = TB_CLASSES
    default_first_label = 1

    def class_weights(self) -> torch.Tensor:
        """Balanced class weights over this split (use on the training split: "CW")."""
        return balanced_class_weights(self.labels[self.labels >= 0], len(TB_CLASSES))
