"""Import the authors' published Keras checkpoints (``ViPTT-Net-UCF50.h5``, ``ViPTT-Net-CLEF-TBT.h5``).

These are legacy HDF5 files written by Keras 2 / TensorFlow 2.4 ``model.save("x.h5")``.
Only h5py is needed. Weights live under ``model_weights/`` as datasets named
``<layer>/.../<weight>:0``; layer names may carry numeric suffixes (``conv3d_1``,
``lstm_2``, ``dense_4``) and the output layer may have any name, so layers are found by
their weight names and shapes:

* the 1x1x1 ``Conv3D`` adapter: kernel ``(1, 1, 1, in, 3)`` + bias;
* the VGG-16 convolutions inside ``TimeDistributed``: ``block{b}_conv{n}`` kernels ``(kh, kw, in, out)``;
* the LSTM: ``lstm_cell/kernel (F, 4H)``, ``recurrent_kernel (H, 4H)``, ``bias (4H,)``, gates in the
  order input, forget, cell, output (PyTorch's order too; its second bias is set to zero);
* two ``Dense`` layers, kernels ``(in, out)``: the hidden one reads the LSTM state, the output
  one reads the hidden layer and sets the number of classes.

Keras inputs are channels-last ``(B, D, H, W, 1)``; the converted model takes ``(B, 1, D, H, W)``.
The converted model's config records what the authors trained it on (class names, 70 x 224 x 224
inputs, their CT preprocessing or raw 0-255 video frames), so ``slicevid predict`` can use it as is.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..data.imageclef import TB_CLASSES
from ..data.preprocess import AUTHORS_CT_PREPROCESSING
from ..data.ucf import UCF50_PAPER_CLASSES
from ..encoders.vgg import keras_vgg16_conv_weights
from ..errors import CheckpointError
from ..model import SliceSequenceClassifier, create_model
from ..resample import PAPER_SIZE
from ..weights import read_h5_datasets


def _pick(datasets: dict[str, np.ndarray], path: Path, what: str, predicate) -> tuple[str, np.ndarray]:
    matches = [(name, value) for name, value in datasets.items() if predicate(name, value)]
    if not matches:
        raise CheckpointError(f"{path}: no {what} found; the file holds {sorted(datasets)[:12]}")
    return sorted(matches)[0]


def _weight(name: str) -> str:
    """Last path component without Keras' ``:0`` suffix (``kernel``, ``bias`` ...)."""
    return name.rsplit("/", 1)[-1].split(":")[0]


def _layer_of(name: str) -> str:
    return name.rsplit("/", 1)[0]


def _expect(path: Path, name: str, value: np.ndarray, shape: tuple) -> np.ndarray:
    if value.shape != shape:
        raise CheckpointError(f"{path}: weight {name} has shape {value.shape}, expected {shape}")
    return value


def _convert(datasets: dict[str, np.ndarray], path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Our config and state dict (numpy) from the Keras datasets."""
    state: dict[str, np.ndarray] = {}
    name, kernel = _pick(
        datasets, path, "Conv3D adapter kernel (1, 1, 1, in, 3)", lambda n, v: _weight(n) == "kernel" and v.ndim == 5
    )
    in_channels = kernel.shape[3]
    _expect(path, name, kernel, (1, 1, 1, in_channels, 3))
    state["adapter.weight"] = kernel.transpose(4, 3, 0, 1, 2)
    state["adapter.bias"] = _expect(
        path, _layer_of(name) + "/bias:0", datasets.get(_layer_of(name) + "/bias:0", np.empty(0)), (3,)
    )

    state.update({f"encoder.{k}": v for k, v in keras_vgg16_conv_weights(datasets, path).items()})

    name, recurrent = _pick(datasets, path, "LSTM recurrent_kernel", lambda n, v: _weight(n) == "recurrent_kernel")
    hidden = recurrent.shape[0]
    _expect(path, name, recurrent, (hidden, 4 * hidden))
    cell = _layer_of(name)
    for part, shape in (("kernel", (512, 4 * hidden)), ("bias", (4 * hidden,))):
        if f"{cell}/{part}:0" not in datasets:
            raise CheckpointError(f"{path}: missing weight {cell}/{part}:0")
        _expect(path, f"{cell}/{part}:0", datasets[f"{cell}/{part}:0"], shape)
    state["aggregator.rnn.weight_ih_l0"] = datasets[f"{cell}/kernel:0"].T
    state["aggregator.rnn.weight_hh_l0"] = recurrent.T
    state["aggregator.rnn.bias_ih_l0"] = datasets[f"{cell}/bias:0"]
    state["aggregator.rnn.bias_hh_l0"] = np.zeros(4 * hidden, dtype=recurrent.dtype)

    dense = {
        _layer_of(n): v
        for n, v in datasets.items()
        if _weight(n) == "kernel" and v.ndim == 2 and not _layer_of(n).startswith(cell)
    }
    hidden_layers = [n for n, v in dense.items() if v.shape[0] == hidden]
    if len(hidden_layers) != 1:
        raise CheckpointError(
            f"{path}: expected one Dense kernel of shape ({hidden}, N) after the LSTM, "
            f"found {[(n, dense[n].shape) for n in hidden_layers]}"
        )
    hidden_name = hidden_layers[0]
    head_hidden = dense[hidden_name].shape[1]
    outputs = [n for n, v in dense.items() if v.shape[0] == head_hidden and n != hidden_name]
    if len(outputs) != 1:
        raise CheckpointError(
            f"{path}: expected one output Dense kernel of shape ({head_hidden}, classes), "
            f"found {[(n, dense[n].shape) for n in outputs]}"
        )
    output_name = outputs[0]
    for layer, prefix in ((hidden_name, "head.hidden"), (output_name, "head.classifier")):
        bias_name = f"{layer}/bias:0"
        if bias_name not in datasets:
            raise CheckpointError(f"{path}: missing weight {bias_name}")
        state[f"{prefix}.weight"] = dense[layer].T
        state[f"{prefix}.bias"] = _expect(path, bias_name, datasets[bias_name], (dense[layer].shape[1],))
    config = {
        "num_classes": dense[output_name].shape[1],
        "in_channels": in_channels,
        "head_hidden": head_hidden,
        "hidden_size": hidden,
    }
    return config, state


def load_keras_h5(path: str | os.PathLike) -> SliceSequenceClassifier:
    """Build a [`SliceSequenceClassifier`][slicevid.SliceSequenceClassifier] from a ViPTT-Net Keras ``.h5`` file.

    Args:
        path: ``ViPTT-Net-UCF50.h5`` or ``ViPTT-Net-CLEF-TBT.h5`` (or any model of the same layers).

    Returns:
        The model, in eval-ready form, with a config that records what the authors trained it on.

    Raises:
        WeightsNotFoundError: the file does not exist.
        CheckpointError: the file is not HDF5, or a weight is missing or mis-shaped (named in the message).
    """
    path = Path(path)
    config, state = _convert(read_h5_datasets(path), path)
    model = create_model(
        "vgg16",
        "lstm",
        config["num_classes"],
        in_channels=config["in_channels"],
        head_hidden=config["head_hidden"],
        aggregator_kwargs={"hidden_size": config["hidden_size"], "readout": "last"},
    )
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}
    model.load_state_dict(tensors, strict=True)
    model.config = model.config.replace(**_authors_inputs(model.num_classes))
    return model


def _authors_inputs(num_classes: int) -> dict:
    """What the authors' two checkpoints were trained on: class names, input size, range, preprocessing."""
    if num_classes == len(TB_CLASSES):  # ViPTT-Net-CLEF-TBT.h5
        preprocessing = AUTHORS_CT_PREPROCESSING
        return {"class_names": TB_CLASSES, "input_size": preprocessing.size, "preprocessing": preprocessing}
    if num_classes == len(UCF50_PAPER_CLASSES):  # ViPTT-Net-UCF50.h5: raw 0-255 frames
        return {"class_names": UCF50_PAPER_CLASSES, "input_size": PAPER_SIZE, "input_range": (0.0, 255.0)}
    return {}
