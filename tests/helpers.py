"""Helpers every test module imports from here: tiny models, small real files, temporary registrations."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from slicevid import create_model
from slicevid.aggregators import register_aggregator, unregister_aggregator
from slicevid.encoders import register_encoder, unregister_encoder

TINY_ENCODER = "timm:test_resnet"
PLAIN_CNN = "test_plain_cnn"


def tiny_model(num_classes: int = 5, **kwargs):
    """A real but small slice-sequence model (timm's test_resnet + a small LSTM)."""
    kwargs.setdefault("aggregator_kwargs", {"hidden_size": 16})
    kwargs.setdefault("head_hidden", 32)
    return create_model(kwargs.pop("encoder", TINY_ENCODER), kwargs.pop("aggregator", "lstm"), num_classes, **kwargs)


def plain_cnn(in_chans: int = 3) -> nn.Module:
    """A BatchNorm-free encoder, so batch composition cannot change results."""
    net = nn.Sequential(
        nn.Conv2d(in_chans, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 12, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    net.num_features = 12
    return net


def plain_model(classes: int = 3, **kwargs):
    """A small model on :func:`plain_cnn`, seeded (needs the ``plain_cnn_encoder`` fixture)."""
    torch.manual_seed(0)
    kwargs.setdefault("aggregator_kwargs", {"hidden_size": 8})
    return create_model(PLAIN_CNN, num_classes=classes, head_hidden=16, **kwargs)


def toy_data(n: int = 12, classes: int = 3, seed: int = 0, noise: float = 1.0) -> TensorDataset:
    """``n`` random volumes (1, 3, 32, 32) whose brightness grows with the label: a task any model learns."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    volumes = torch.rand(n, 1, 3, 32, 32, generator=gen) * noise + labels.view(-1, 1, 1, 1, 1) * 0.2
    return TensorDataset(volumes, labels)


@contextlib.contextmanager
def registered(kind: str, name: str, builder) -> Iterator[None]:
    """Register an ``"encoder"`` or an ``"aggregator"`` under ``name`` for the duration of a block."""
    register, unregister = {
        "encoder": (register_encoder, unregister_encoder),
        "aggregator": (register_aggregator, unregister_aggregator),
    }[kind]
    register(name, builder)
    try:
        yield
    finally:
        unregister(name)


def write_nifti(path: Path, volume_dhw: np.ndarray, spacing=(2.0, 0.8, 0.7), dtype=np.int16) -> Path:
    """Write a (D, H, W) volume as NIfTI in the file layout (x, y, z) with mm spacing (d, h, w)."""
    affine = np.diag([spacing[2], spacing[1], spacing[0], 1.0])
    nib.save(nib.Nifti1Image(np.asarray(volume_dhw).astype(dtype).transpose(2, 1, 0), affine), str(path))
    return path


def write_dicom_series(folder: Path, volume_dhw: np.ndarray, spacing=(2.5, 0.8, 0.8)) -> Path:
    """Write a (D, H, W) HU volume as a CT DICOM series, one file per slice."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series, study = generate_uid(), generate_uid()
    for k, image in enumerate(volume_dhw):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"slice{k:03d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = study, series, "CT"
        ds.PatientID, ds.InstanceNumber = "PHANTOM", k + 1
        ds.ImagePositionPatient = [0.0, 0.0, float(k * spacing[0])]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [spacing[1], spacing[2]]
        ds.SliceThickness = spacing[0]
        ds.Rows, ds.Columns = image.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = -1024.0, 1.0
        ds.PixelData = (np.asarray(image) + 1024).astype(np.int16).tobytes()
        ds.save_as(folder / f"slice{k:03d}.dcm", enforce_file_format=True)
    return folder


SHARED_ADRENALMNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "adrenalmnist3d.npz"
"""The real AdrenalMNIST3D file beside the repository (CI has it; a clone elsewhere may not)."""


def write_medmnist_npz(path: Path, counts=(24, 8, 8), side: int = 8, classes: int = 2, seed: int = 0) -> Path:
    """A tiny MedMNIST-format ``.npz``: uint8 ``(N, D, H, W)`` volumes whose class is a bright cube's position."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in zip(("train", "val", "test"), counts, strict=True):
        labels = np.arange(count) % classes
        volumes = rng.integers(0, 40, size=(count, side, side, side)).astype(np.uint8)
        for volume, label in zip(volumes, labels, strict=True):
            start = label * side // (classes + 1)
            volume[start : start + side // 2, 2:-2, 2:-2] = 255
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = volumes, labels[:, None].astype(np.uint8)
    np.savez_compressed(path, **arrays)
    return path
