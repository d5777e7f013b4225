"""Deploying a trained model: ONNX with the model's own description, ONNX Runtime, int8, and ``torch.export``.

`export_onnx()` writes a graph whose first input is the volume batch ``volumes``
``(B, C, D, H, W)`` (dynamic ``B`` and ``D``; ``H`` and ``W`` too for a model that records no
input size), whose second input is ``lengths`` ``(B,)`` int64 (each volume's real depth in a
padded batch), and whose outputs are each head's logits in
task order (the first output is a one-head model's logits). The model's
[`ModelConfig`][slicevid.ModelConfig] (class names, tasks and thresholds, input size and range, CT
preprocessing, training data) is embedded as metadata, so the file alone is enough to predict:
``slicevid predict --checkpoint model.onnx`` runs it with ONNX Runtime, with no model code of
PyTorch's on that path.

Every built-in aggregator exports (LSTM, GRU, bidirectional and stacked, attention, transformer,
mean), with ``slice_context``, the feature LayerNorm, padded batches and every task head: the
model's export mode (``SliceSequenceClassifier.exporting``) replaces the two steps a graph
cannot hold, the selection of real slices and packed recurrent sequences, by equivalent masked
ones. `export_program()` writes the same graph as a ``torch.export`` program, the format of
PyTorch's own deployment paths (AOTInductor, ExecuTorch).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ._io import atomic_write
from .errors import CheckpointError, ConfigError, DataError
from .model_config import ModelConfig
from .outputs import Outputs
from .resample import PAPER_SIZE
from .tasks import Task

__all__ = [
    "CHECKSUM_KEY",
    "CONFIG_KEY",
    "EXPORT_FORMATS",
    "QUANTIZED_OPS",
    "OnnxModel",
    "export_onnx",
    "export_program",
    "quantize_onnx",
    "read_onnx_config",
]

CONFIG_KEY = "slicevid_config"
"""The ONNX metadata key that holds the model's [`ModelConfig`][slicevid.ModelConfig] as JSON."""
CHECKSUM_KEY = "slicevid_sha256"
"""The ONNX metadata key that holds the SHA-256 of the graph's nodes and weights, checked when it loads."""
INPUTS = ("volumes", "lengths")
EXPORT_FORMATS = {"onnx": ".onnx", "torch-export": ".pt2"}
"""The export formats and the file ending each is written (and recognised) with."""


class _Graph(nn.Module):
    """The model as an exporter sees it: ``(volumes, lengths)`` in, each task's logits out, in task order.

    It takes a slicevid model (anything with ``config``, ``forward_outputs`` and ``exporting``); this
    module sits below the model class, so that the model's own ``export_onnx`` can call it.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, volumes: Tensor, lengths: Tensor) -> tuple[Tensor, ...]:
        logits = self.model.forward_outputs(volumes, lengths).tasks
        return tuple(logits[name] for name in self.model.config.tasks)


def output_names(config: ModelConfig) -> list[str]:
    """``["logits"]`` for a one-head model, the task names for several."""
    return ["logits"] if len(config.tasks) == 1 else list(config.tasks)


def _example(model: nn.Module, depth: int | None) -> tuple[Tensor, Tensor]:
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 2):
        raise ConfigError(
            "depth", f"must be an integer of at least 2 (the exported depth is dynamic from 2 up), got {depth!r}"
        )
    size = model.config.input_size or (None, *PAPER_SIZE[1:])
    depth = depth or size[0] or 8
    volumes = torch.rand(2, model.config.in_channels, depth, size[1], size[2])
    return volumes, torch.tensor([depth, max(1, depth - 1)])


@contextmanager
def _quiet() -> Iterator[None]:
    """Hide the exporter's and the quantizer's advice to their own developers (warnings, root-logger lines)."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


@contextmanager
def _recurrent_ops_dynamic() -> Iterator[None]:
    """Trace ``aten.lstm``/``aten.gru`` as loops over any depth (PyTorch's while-loop decompositions).

    PyTorch registers these decompositions while exporting, but its ops keep a dispatch cache
    that the registration does not clear: from the second export in a process on, recurrent
    layers were unrolled at the example depth. Clearing the cache on entry and exit makes every
    export alike. PyTorch releases without these decompositions write recurrent graphs of the
    example's depth, which `OnnxModel` then enforces.
    """
    try:
        from torch.export._patches import (
            register_gru_while_loop_decomposition,
            register_lstm_while_loop_decomposition,
        )
    except ImportError:
        yield
        return
    ops = (torch.ops.aten.lstm.input, torch.ops.aten.gru.input)
    for op in ops:
        op._dispatch_cache.clear()
    try:
        with register_lstm_while_loop_decomposition(), register_gru_while_loop_decomposition():
            for op in ops:
                op._dispatch_cache.clear()
            yield
    finally:
        for op in ops:
            op._dispatch_cache.clear()


def _dynamic_shapes(config: ModelConfig) -> dict:
    """Batch and depth are dynamic; height and width too for a model that records no input size."""
    batch, depth = torch.export.Dim("batch", min=1), torch.export.Dim("depth", min=2)
    volumes = {0: batch, 2: depth}
    if config.input_size is None:
        volumes |= {3: torch.export.Dim("height", min=16), 4: torch.export.Dim("width", min=16)}
    return {"volumes": volumes, "lengths": {0: batch}}


def export_onnx(model: nn.Module, path: str | os.PathLike, *, depth: int | None = None) -> Path:
    """Write ``model`` as an ONNX graph with its description embedded (see the module docs).

    Args:
        model: a slicevid model (any aggregator, any heads).
        path: the ``.onnx`` file to write.
        depth: the example depth to trace with (default: the model's input depth, else 8).

    Returns:
        The file.

    Raises:
        ConfigError: not a slicevid model, or the exporter failed.
    """
    import onnx

    if not (hasattr(model, "exporting") and isinstance(getattr(model, "config", None), ModelConfig)):
        raise ConfigError("export", f"takes a slicevid model, got {type(model).__name__}")
    path = Path(path)
    model = model.eval()
    example = _example(model, depth)
    with model.exporting(), torch.no_grad(), _recurrent_ops_dynamic(), _quiet():
        try:
            program = torch.onnx.export(
                _Graph(model),
                example,
                dynamo=True,
                input_names=list(INPUTS),
                output_names=output_names(model.config),
                dynamic_shapes=_dynamic_shapes(model.config),
                verbose=False,
            )
        except Exception as err:  # the exporter's errors are many and long
            raise ConfigError(
                "export", f"ONNX export failed ({type(err).__name__}: {str(err).splitlines()[0]})"
            ) from err
    graph = program.model_proto
    graph.metadata_props.add(key=CONFIG_KEY, value=model.config.to_json())
    _seal(graph)
    atomic_write(path, lambda tmp: onnx.save_model(graph, str(tmp)))
    return path


def _checksum(graph) -> str:
    """SHA-256 of what a graph computes: its nodes and its weights (not its metadata)."""
    digest = hashlib.sha256()
    for item in (*graph.graph.node, *graph.graph.initializer):
        digest.update(item.SerializeToString(deterministic=True))
    return digest.hexdigest()


def _seal(graph) -> None:
    """Record the graph's checksum in its metadata (replacing an earlier one)."""
    kept = [prop for prop in graph.metadata_props if prop.key != CHECKSUM_KEY]
    del graph.metadata_props[:]
    graph.metadata_props.extend(kept)
    graph.metadata_props.add(key=CHECKSUM_KEY, value=_checksum(graph))


def read_onnx_config(path: str | os.PathLike) -> ModelConfig:
    """The [`ModelConfig`][slicevid.ModelConfig] embedded in an exported ``.onnx`` file.

    Args:
        path: the ``.onnx`` file.

    Raises:
        CheckpointError: the file is missing, not ONNX, or holds no slicevid description.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: ONNX file not found")
    try:
        graph = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # onnx raises DecodeError and others
        raise CheckpointError(f"{path}: not a readable ONNX file ({type(err).__name__}: {err})") from err
    values = {prop.key: prop.value for prop in graph.metadata_props}
    if CONFIG_KEY not in values:
        raise CheckpointError(f"{path}: an ONNX file without slicevid's model description (metadata {CONFIG_KEY!r})")
    if CHECKSUM_KEY in values and values[CHECKSUM_KEY] != _checksum(graph):
        raise CheckpointError(f"{path}: the graph's nodes or weights do not match its checksum: the file is damaged")
    return ModelConfig.from_dict(json.loads(values[CONFIG_KEY]), source=str(path))


class OnnxModel:
    """An exported model run by ONNX Runtime: call it like a model's ``forward_outputs``.

    Args:
        path: the ``.onnx`` file (its description is read from its metadata).
        threads: intra-op threads of the session (``None``: ONNX Runtime's choice).
        providers: execution providers, e.g. ``["CUDAExecutionProvider", "CPUExecutionProvider"]``.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None, providers: list[str] | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        self.config = read_onnx_config(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
        self.outputs = [output.name for output in self.session.get_outputs()]
        depth = self.session.get_inputs()[0].shape[2]
        self.depth = depth if isinstance(depth, int) else None
        """The only depth the graph takes (``None``: any)."""

    @property
    def tasks(self) -> dict[str, Task]:
        return dict(self.config.tasks)

    def __call__(self, volumes: Tensor, lengths: Tensor | None = None) -> Outputs:
        """Each task's logits for a batch ``(B, C, D, H, W)`` (lengths default to the full depth)."""
        volumes = volumes.detach().cpu().float()
        if self.depth is not None and volumes.shape[2] != self.depth:
            raise DataError(
                f"{self.path}: this graph takes volumes of depth {self.depth} only (it was exported so), "
                f"got depth {volumes.shape[2]}; resample the scans to {self.depth} slices"
            )
        if lengths is None:
            lengths = torch.full((volumes.shape[0],), volumes.shape[2], dtype=torch.long)
        feeds = {"volumes": volumes.numpy(), "lengths": lengths.detach().cpu().long().numpy()}
        results = self.session.run(self.outputs, feeds)
        logits = {name: torch.from_numpy(np.asarray(r)) for name, r in zip(self.config.tasks, results, strict=True)}
        return Outputs(logits)


QUANTIZED_OPS = ["MatMul", "Gemm", "LSTM", "GRU", "Attention"]
"""The ops [`quantize_onnx()`][slicevid.deploy.quantize_onnx] makes int8. Not ``Conv``: ONNX Runtime's
dynamically quantized convolution (``ConvInteger``) ran the ViPTT-Net preset 4x slower than fp32 on a 2-core CPU."""


def quantize_onnx(path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """An int8 copy of an exported model, its description kept.

    Dynamic quantization (ONNX Runtime's): weights of the `QUANTIZED_OPS` are stored as
    int8 and activations are quantized on the fly, so no calibration data is needed. It shrinks
    the recurrent, attention and dense layers; convolutions stay fp32 (see `QUANTIZED_OPS`).

    Args:
        path: an exported ``.onnx`` file.
        out: the int8 file to write (may be ``path`` itself).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    config = read_onnx_config(path)

    def write(tmp: Path) -> None:
        with _quiet():
            quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=QUANTIZED_OPS)
        graph = onnx.load(str(tmp))
        if CONFIG_KEY not in {prop.key for prop in graph.metadata_props}:
            graph.metadata_props.add(key=CONFIG_KEY, value=config.to_json())
        _seal(graph)  # the quantized weights' checksum
        onnx.save_model(graph, str(tmp))

    atomic_write(out, write)  # ``out`` may be ``path`` itself
    return Path(out)


def export_program(model: nn.Module, path: str | os.PathLike, *, depth: int | None = None) -> Path:
    """Write ``model`` as a ``torch.export`` program (``.pt2``), dynamic in batch and depth.

    Load it with ``torch.export.load(path).module()``; call that with ``(volumes, lengths)``.

    Args:
        model: a slicevid model.
        path: the ``.pt2`` file to write.
        depth: the example depth to trace with.
    """
    path = Path(path)
    model = model.eval()
    example = _example(model, depth)
    with model.exporting(), torch.no_grad(), _recurrent_ops_dynamic(), _quiet():
        try:
            program = torch.export.export(_Graph(model), example, dynamic_shapes=_dynamic_shapes(model.config))
        except Exception as err:  # the exporter's errors are many and long
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise ConfigError("export", f"torch.export failed ({type(err).__name__}: {first})") from err
    atomic_write(path, lambda tmp: torch.export.save(program, str(tmp)))
    return path
