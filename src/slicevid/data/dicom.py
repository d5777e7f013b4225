"""DICOM as hospitals send it: every common compression decoded, anything that is not a scan refused in one line.

A folder of DICOM files becomes one volume ``(D, H, W)`` in Hounsfield units. What real exports
hold, and what the reader does with it:

* **compressed pixel data** (JPEG lossless and baseline/extended, JPEG-LS, JPEG 2000, RLE):
  decoded by the pylibjpeg plugins slicevid depends on, and by GDCM where they refuse a damaged
  but readable stream (a 12-bit JPEG Extended scan with an out-of-range scan header, as older
  archives hold); data no decoder reads is one line naming the file, the syntax and the package
  that decodes it;
* **files without the DICOM preamble and file-meta header** (old exports): read anyway;
* **invalid header values** (an ``IS`` element holding ``1A``): one line naming the file and element;
* **colour images** (``SamplesPerPixel`` > 1, palette colour) and **non-image objects** (SEG,
  RTSTRUCT, RTPLAN, RTDOSE, SR, waveforms, presentation states): refused, the object named;
* **other image modalities** (MR, PT ...): loaded, with a one-time warning that the HU window
  assumes CT;
* **several series in one folder**: refused with each series' UID, slice count and description,
  unless ``series=`` chooses one (by UID or by its 1-based number in that list);
* **localizer (scout) images**: left out;
* **slice order**: by position along the slice normal, not by file name or ``InstanceNumber``;
  exact duplicate positions are dropped (with a warning), gaps larger than 1.5 times the median
  spacing are counted in a warning, and the depth spacing is the median step between positions;
* **geometry**: a warning for gantry tilt or slices that are not axial;
* **pixel values**: ``RescaleSlope`` / ``RescaleIntercept`` (or a modality LUT) applied, and
  pixels equal to ``PixelPaddingValue`` (or within its range limit) set to air, -1000 HU.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import DataError

AIR_HU = -1000.0
NON_IMAGE_MODALITIES = {
    "SEG": "segmentation",
    "RTSTRUCT": "RT structure set",
    "RTPLAN": "RT plan",
    "RTDOSE": "RT dose grid",
    "RTRECORD": "RT treatment record",
    "SR": "structured report",
    "PR": "presentation state",
    "KO": "key object selection",
    "ECG": "waveform",
    "HD": "waveform",
    "AU": "audio",
    "DOC": "encapsulated document",
    "REG": "registration",
}
COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT", "PALETTE COLOR")
DECODERS = {
    "JPEG": "pylibjpeg-libjpeg",
    "JPEG-LS": "pylibjpeg-libjpeg",
    "JPEG 2000": "pylibjpeg-openjpeg",
    "RLE": "pylibjpeg-rle",
    "Deflated": "pydicom (zlib)",
}


def read_header(path: Path):
    """A file's header without pixel data; files without the preamble and meta header are read too.

    Raises:
        DataError: the file is not DICOM at all.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(str(path), stop_before_pixels=True)
    except InvalidDicomError:
        pass  # no preamble or file-meta header: old exports, read with force below
    except Exception as err:  # pydicom raises many types for damaged files
        raise DataError(f"{path}: not a readable DICOM file ({type(err).__name__}: {_first_line(err)})") from err
    try:
        header = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
    except Exception as err:
        raise DataError(f"{path}: not a DICOM file ({type(err).__name__}: {_first_line(err)})") from err
    if "SOPClassUID" not in header and "Rows" not in header and "Modality" not in header:
        raise DataError(f"{path}: not a DICOM file (no DICOM elements found)")
    return header


def element(header, name: str, path: Path, default=None, kind=None):
    """A header element's value, converted by ``kind`` (``int``, ``float``) when given.

    Raises:
        DataError: an invalid value (an ``IS`` element holding ``1A``), naming the file and the element.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns before we raise; one message is enough
            value = header.get(name, default)
            value = default if value is None or value == "" else value
            return kind(value) if kind is not None and value is not None else value
    except (ValueError, TypeError, OverflowError) as err:
        raise DataError(f"{path}: invalid value of DICOM element {name} ({_first_line(err)})") from err


def check_image(header, path: Path) -> None:
    """Refuse non-image objects and colour images; warn that HU windowing assumes CT for other modalities."""
    modality = str(element(header, "Modality", path, "")).upper()
    if modality in NON_IMAGE_MODALITIES:
        raise DataError(f"{path}: a {modality} object ({NON_IMAGE_MODALITIES[modality]}), not an image of a scan")
    if "Rows" not in header or "Columns" not in header:
        raise DataError(f"{path}: holds no image (a {modality or 'DICOM'} object without pixel data)")
    samples = element(header, "SamplesPerPixel", path, 1, int)
    photometric = str(element(header, "PhotometricInterpretation", path, "MONOCHROME2")).upper()
    if samples > 1 or photometric in COLOUR:
        raise DataError(f"{path}: colour image ({photometric}, {samples} samples per pixel), not a CT slice")
    if modality and modality != "CT":  # Python's default filter shows it once per run, not per file
        warnings.warn(
            f"{path}: modality {modality}, not CT: the HU window [-1000, 400] assumes CT values", stacklevel=4
        )


def is_localizer(header, path: Path) -> bool:
    return "LOCALIZER" in [str(v).upper() for v in (element(header, "ImageType", path, []) or [])]


def pixels(path: Path, header=None) -> np.ndarray:
    """The stored pixels of a file, decoded, as float32 in modality units (HU for CT), padding set to air.

    Raises:
        DataError: pixel data that cannot be decoded (naming the syntax and the package that decodes it).
    """
    import pydicom
    from pydicom.pixels import apply_modality_lut

    try:
        dataset = pydicom.dcmread(str(path), force=True)
        stored = _decoded(dataset, path)
    except Exception as err:  # the decoders raise many types, with multi-line messages
        raise DataError(f"{path}: {_decode_failure(dataset if 'dataset' in locals() else header, err)}") from err
    try:
        transform = _shared_group(dataset, "PixelValueTransformationSequence")
        if "RescaleSlope" not in dataset and transform is not None:  # enhanced objects keep it per group
            slope, intercept = float(transform.get("RescaleSlope", 1)), float(transform.get("RescaleIntercept", 0))
            values = (stored * slope + intercept).astype(np.float32)
        else:
            values = np.asarray(apply_modality_lut(stored, dataset), dtype=np.float32)
    except (ValueError, TypeError, AttributeError) as err:
        raise DataError(f"{path}: invalid rescale or modality LUT ({_first_line(err)})") from err
    padding = element(dataset, "PixelPaddingValue", path, None, int)
    if padding is not None:
        limit = element(dataset, "PixelPaddingRangeLimit", path, padding, int)
        low, high = sorted((int(padding), limit))
        values[(stored >= low) & (stored <= high)] = AIR_HU
    return values


def _decoded(dataset, path: Path) -> np.ndarray:
    """The stored pixels: pydicom's decoders (the pylibjpeg plugins), else GDCM's for compressed data."""
    try:
        return dataset.pixel_array
    except Exception:
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        fallback = _gdcm_pixels(path) if syntax is not None and syntax.is_compressed else None
        if fallback is None:
            raise
        return fallback


GDCM_TYPES = {"UINT8": np.uint8, "INT8": np.int8, "UINT16": np.uint16, "INT16": np.int16, "UINT32": np.uint32}


def _gdcm_pixels(path: Path) -> np.ndarray | None:
    """GDCM's own decoding of a file (``None`` when GDCM is missing or cannot decode it either).

    GDCM reads some damaged streams the pylibjpeg decoders refuse: pydicom's own test file
    ``JPEG-lossy.dcm`` (12-bit JPEG Extended, an invalid scan header) decodes to within one
    grey level of ``JPGExtended.dcm``, its repaired copy, as pylibjpeg decodes that.
    """
    try:
        import gdcm
    except ImportError:
        return None
    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    if not reader.Read():
        return None
    image = reader.GetImage()
    buffer = image.GetBuffer()
    kind = GDCM_TYPES.get(image.GetPixelFormat().GetScalarTypeAsString())
    if buffer is None or kind is None or image.GetPixelFormat().GetSamplesPerPixel() != 1:
        return None
    raw = buffer.encode("utf-8", errors="surrogateescape") if isinstance(buffer, str) else bytes(buffer)
    columns, rows, *frames = image.GetDimensions()
    shape = (rows, columns) if not frames or frames[0] == 1 else (frames[0], rows, columns)
    if len(raw) != int(np.prod(shape)) * np.dtype(kind).itemsize:
        return None
    return np.frombuffer(raw, dtype=kind).reshape(shape).copy()


def _decode_failure(dataset, err: Exception) -> str:
    syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None:
        return f"cannot read its pixel data ({type(err).__name__}: {_first_line(err)})"
    name = syntax.name
    package = next((p for key, p in sorted(DECODERS.items(), key=lambda kv: -len(kv[0])) if key in name), None)
    if package is None or not syntax.is_compressed:
        return f"cannot read its {name} pixel data ({_first_line(err)})"
    return (
        f"cannot decode its {name} ({syntax}) pixel data with the installed decoders, GDCM's included; "
        f"{package} decodes this syntax (pip install {package.split()[0]}), so the data are likely damaged "
        f"({_first_line(err)})"
    )


def _first_line(err: Exception) -> str:
    """The first line of an error that says something (not a header such as "... all available plugins:")."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    telling = [line for line in lines if not line.endswith(":")]
    return (telling or lines or [type(err).__name__])[0][:200]


def read_series(folder: Path, series: str | int | None = None) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A folder of single-frame DICOM files as ``(volume (D, H, W) in HU, spacing (d, h, w) mm)``.

    Raises:
        DataError: no images, non-image or colour objects, several series (without ``series``),
            invalid header values, pixel data that cannot be decoded, slices of unequal size.
    """
    headers = _series_headers(folder)
    chosen = choose_series(folder, headers, series)
    slices = _in_slice_order(folder, chosen)
    first = slices[0][1]
    rows, columns = _pixel_spacing(first, slices[0][0])
    volume = []
    for path, header in slices:
        image = pixels(path, header)
        if image.ndim != 2:
            raise DataError(f"{path}: {image.shape[0]} frames in one file among single slices; give it apart")
        if volume and image.shape != volume[0].shape:
            raise DataError(f"{path}: a slice of shape {image.shape} among slices of shape {volume[0].shape}")
        volume.append(image)
    depth = _slice_spacing(folder, slices)
    return np.stack(volume), (depth, rows, columns)


def _series_headers(folder: Path) -> list[tuple[Path, object]]:
    """The image files of a folder with their headers (non-image files refused, stray non-DICOM files skipped)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.name != "DICOMDIR")
    if not files:
        raise DataError(f"{folder}: empty folder; expected the DICOM files of one series")
    headers, strays = [], []
    for path in files:
        try:
            header = read_header(path)
        except DataError:
            strays.append(path.name)
            continue
        check_image(header, path)
        headers.append((path, header))
    if not headers:
        raise DataError(f"{folder}: holds no DICOM image ({len(strays)} file(s) that are not DICOM: {strays[:3]})")
    if strays:
        warnings.warn(f"{folder}: left out {len(strays)} file(s) that are not DICOM: {strays[:3]}", stacklevel=3)
    localizers = [h for h in headers if is_localizer(h[1], h[0])]
    if localizers:
        warnings.warn(f"{folder}: left out {len(localizers)} localizer image(s)", stacklevel=3)
        headers = [h for h in headers if h not in localizers]
        if not headers:
            raise DataError(f"{folder}: holds only localizer (scout) images, no series of slices")
    return headers


def choose_series(folder: Path, headers: list, series: str | int | None) -> list:
    """The files of one series: the only one, or the one ``series`` names (a UID, or its number when the
    series are listed largest first)."""
    found: dict[str, list] = {}
    for path, header in headers:
        found.setdefault(str(element(header, "SeriesInstanceUID", path, "unknown")), []).append((path, header))
    groups = OrderedDict(sorted(found.items(), key=lambda item: (-len(item[1]), item[0])))
    if series is not None:
        uids = list(groups)
        chosen = uids[int(series) - 1] if str(series).isdigit() and int(series) <= len(uids) else str(series)
        if chosen not in groups:
            raise DataError(f"{folder}: no series {series!r}; it holds {describe_series(groups)}")
        return groups[chosen]
    if len(groups) > 1:
        raise DataError(
            f"{folder}: holds {len(groups)} series, largest first: {describe_series(groups)}; choose one with "
            "--series (series= in Python): its UID or its number in this list"
        )
    return next(iter(groups.values()))


def describe_series(groups: OrderedDict) -> str:
    parts = []
    for number, (uid, files) in enumerate(groups.items(), start=1):
        path, header = files[0]
        description = element(header, "SeriesDescription", path, "")
        parts.append(f"{number}. {uid} ({len(files)} file(s){', ' + repr(str(description)) if description else ''})")
    return "; ".join(parts)


def _floats(value) -> list[float]:
    return [float(v) for v in value]


def _normal(header, path: Path) -> np.ndarray | None:
    orientation = element(header, "ImageOrientationPatient", path, None, _floats)
    if orientation is None or len(orientation) != 6:
        return None
    row, column = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    normal = np.cross(row, column)
    return normal / np.linalg.norm(normal) if np.linalg.norm(normal) > 0 else None


def _in_slice_order(folder: Path, files: list) -> list:
    """Slices sorted by position along the slice normal (duplicates dropped, geometry warnings given)."""
    normal = _normal(files[0][1], files[0][0])
    positions = [element(h, "ImagePositionPatient", p, None, _floats) for p, h in files]
    if normal is None or any(pos is None or len(pos) != 3 for pos in positions):
        warnings.warn(f"{folder}: slices without position or orientation: ordered by InstanceNumber", stacklevel=4)
        return sorted(files, key=lambda f: element(f[1], "InstanceNumber", f[0], 0, int))
    _warn_about_geometry(folder, files, normal)
    along = np.asarray([np.dot(np.asarray(pos, float), normal) for pos in positions])
    order = np.argsort(along, kind="stable")
    kept, seen = [], set()
    for index in order:
        key = round(float(along[index]), 3)
        if key not in seen:
            seen.add(key)
            kept.append(index)
    if len(kept) < len(order):
        warnings.warn(f"{folder}: dropped {len(order) - len(kept)} slice(s) at duplicate positions", stacklevel=4)
    steps = np.diff(along[kept])
    if len(steps) and (gaps := int((steps > 1.5 * np.median(steps)).sum())):
        warnings.warn(
            f"{folder}: {gaps} gap(s) larger than 1.5 times the median slice spacing ({np.median(steps):.3g} mm)",
            stacklevel=4,
        )
    return [(files[i][0], files[i][1]) for i in kept] if len(kept) > 1 else [files[kept[0]]]


def _warn_about_geometry(folder: Path, files: list, normal: np.ndarray) -> None:
    path, header = files[0]
    tilt = element(header, "GantryDetectorTilt", path, 0.0, float)
    if abs(tilt) > 0.01:
        warnings.warn(f"{folder}: gantry tilt of {tilt:g} degrees; slices are sheared, not resampled", stacklevel=5)
    if abs(normal[2]) < 0.9:
        plane = "sagittal" if abs(normal[0]) > abs(normal[1]) else "coronal"
        warnings.warn(f"{folder}: {plane} slices, not axial; depth follows the slice normal", stacklevel=5)


def _pixel_spacing(header, path: Path) -> tuple[float, float]:
    spacing = element(header, "PixelSpacing", path, None, _floats) or element(
        header, "ImagerPixelSpacing", path, None, _floats
    )
    if spacing is None or len(spacing) != 2:
        return 1.0, 1.0
    return spacing[0], spacing[1]


def _slice_spacing(folder: Path, slices: list) -> float:
    """The median step between slice positions; the slice thickness when positions are missing."""
    normal = _normal(slices[0][1], slices[0][0])
    positions = [element(h, "ImagePositionPatient", p, None, _floats) for p, h in slices]
    if normal is not None and len(slices) > 1 and all(pos is not None for pos in positions):
        return float(np.median(np.diff([np.dot(np.asarray(pos, float), normal) for pos in positions])))
    return element(slices[0][1], "SliceThickness", slices[0][0], 1.0, float)


def series_depth(folder: Path, series: str | int | None = None) -> tuple[int, tuple[float, float, float]]:
    """A series' slice count and spacing from its headers alone (no pixel decoding)."""
    slices = _in_slice_order(folder, choose_series(folder, _series_headers(folder), series))
    first_path, first = slices[0]
    return len(slices), (_slice_spacing(folder, slices), *_pixel_spacing(first, first_path))


def frame_count(header, path: Path) -> int:
    return element(header, "NumberOfFrames", path, 1, int) or 1


def read_multiframe(path: Path, header=None) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A multi-frame (enhanced) file: its frames as depth, in HU, spaced as its frame geometry says.

    Raises:
        DataError: a one-frame object (one slice, not a volume), a colour or non-image object,
            undecodable pixel data, or frame geometry that cannot be trusted.
    """
    header = header if header is not None else read_header(path)
    check_image(header, path)
    count = frame_count(header, path)
    if count < 2:
        raise DataError(
            f"{path}: a one-frame {element(header, 'Modality', path, 'DICOM')} object is one slice, not a volume"
        )
    import pydicom

    dataset = pydicom.dcmread(str(path), force=True)
    frames = pixels(path, dataset)
    if frames.ndim != 3:
        raise DataError(f"{path}: expected grayscale frames (frames, rows, columns), got shape {frames.shape}")
    rows, columns = _frame_pixel_spacing(path, dataset)
    return frames, (_frame_spacing(path, dataset, frames.shape[0]), rows, columns)


def _shared_group(dataset, sequence: str):
    shared = dataset.get("SharedFunctionalGroupsSequence")
    if shared and sequence in shared[0]:
        return shared[0][sequence][0]
    return None


def _frame_pixel_spacing(path: Path, dataset) -> tuple[float, float]:
    spacing = dataset.get("PixelSpacing")
    measures = _shared_group(dataset, "PixelMeasuresSequence")
    if spacing is None and measures is not None:
        spacing = measures.get("PixelSpacing")
    if spacing is None or len(spacing) != 2:
        raise DataError(f"{path}: multi-frame DICOM without PixelSpacing; its geometry cannot be trusted")
    return float(spacing[0]), float(spacing[1])


def _frame_spacing(path: Path, dataset, count: int) -> float:
    """Distance between frames (mm): from frame offsets or per-frame positions, which must be uniform."""
    positions = None
    if dataset.get("GridFrameOffsetVector") is not None:
        positions = np.asarray(dataset.GridFrameOffsetVector, dtype=np.float64)[:, None]
    elif dataset.get("PerFrameFunctionalGroupsSequence") is not None:
        try:
            positions = np.asarray(
                [
                    frame.PlanePositionSequence[0].ImagePositionPatient
                    for frame in dataset.PerFrameFunctionalGroupsSequence
                ],
                dtype=np.float64,
            )
        except (AttributeError, IndexError, KeyError):
            positions = None
    if positions is not None and len(positions) == count and count > 1:
        steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
        if steps.min() <= 0 or np.ptp(steps) > 0.01 * steps.mean():
            raise DataError(
                f"{path}: frames are not evenly spaced (steps from {steps.min():g} to {steps.max():g} mm); "
                "resample the series before loading it"
            )
        return float(steps.mean())
    measures = _shared_group(dataset, "PixelMeasuresSequence")
    for source in (dataset, measures):
        value = source.get("SpacingBetweenSlices") if source is not None else None
        if value:
            return float(value)
    raise DataError(
        f"{path}: multi-frame DICOM of {count} frames without frame positions or slice spacing; "
        "its geometry cannot be trusted"
    )
