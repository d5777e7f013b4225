"""load_keras_h5 against a fixture in the Keras 2 / TF 2.4 legacy HDF5 layout and a numpy forward pass."""

import h5py
import numpy as np
import pytest
import torch

from slicevid.convert import load_keras_h5
from slicevid.encoders.vgg import VGG16_BLOCKS
from slicevid.errors import CheckpointError

HIDDEN, DENSE, CLASSES = 16, 32, 5


def keras_weights(seed=0):
    rng = np.random.default_rng(seed)
    he = lambda shape, fan_in: (rng.normal(size=shape) * np.sqrt(2 / fan_in)).astype(np.float32)  # noqa: E731
    weights = {
        "conv3d_1/conv3d_1/kernel:0": he((1, 1, 1, 1, 3), 1),
        "conv3d_1/conv3d_1/bias:0": rng.normal(0, 0.1, 3).astype(np.float32),
    }
    channels = 3
    for block, number in VGG16_BLOCKS:
        out = 64 * 2 ** min(block - 1, 3)
        name = f"time_distributed_1/block{block}_conv{number}"
        weights[f"{name}/kernel:0"] = he((3, 3, channels, out), 9 * channels)
        weights[f"{name}/bias:0"] = rng.normal(0, 0.05, out).astype(np.float32)
        channels = out
    cell = "lstm_2/lstm_2/lstm_cell_2"
    weights[f"{cell}/kernel:0"] = rng.normal(0, 0.05, (512, 4 * HIDDEN)).astype(np.float32)
    weights[f"{cell}/recurrent_kernel:0"] = rng.normal(0, 0.2, (HIDDEN, 4 * HIDDEN)).astype(np.float32)
    weights[f"{cell}/bias:0"] = rng.normal(0, 0.1, 4 * HIDDEN).astype(np.float32)
    weights["dense_4/dense_4/kernel:0"] = rng.normal(0, 0.3, (HIDDEN, DENSE)).astype(np.float32)
    weights["dense_4/dense_4/bias:0"] = rng.normal(0, 0.1, DENSE).astype(np.float32)
    weights["tb_output/tb_output/kernel:0"] = rng.normal(0, 0.3, (DENSE, CLASSES)).astype(np.float32)
    weights["tb_output/tb_output/bias:0"] = rng.normal(0, 0.1, CLASSES).astype(np.float32)
    return weights


def write_h5(path, weights):
    with h5py.File(path, "w") as handle:
        handle.attrs["keras_version"] = b"2.4.0"
        handle.attrs["backend"] = b"tensorflow"
        group = handle.create_group("model_weights")
        layers = sorted({name.split("/")[0] for name in weights})
        group.attrs["layer_names"] = [n.encode() for n in layers]
        for name, value in weights.items():
            group.create_dataset(name, data=value)
    return path


def keras_forward(w, x):
    """What Keras computes for channels-last input (B, D, H, W, 1), written independently in numpy."""
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    batch, depth = x.shape[:2]
    y = x @ w["conv3d_1/conv3d_1/kernel:0"][0, 0, 0] + w["conv3d_1/conv3d_1/bias:0"]
    y = y.reshape(batch * depth, *y.shape[2:]).astype(np.float64)
    for block, number in VGG16_BLOCKS:
        name = f"time_distributed_1/block{block}_conv{number}"
        padded = np.pad(y, ((0, 0), (1, 1), (1, 1), (0, 0)))
        windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))  # (N, H, W, C, 3, 3)
        y = np.maximum(np.einsum("nhwcij,ijco->nhwo", windows, w[f"{name}/kernel:0"]) + w[f"{name}/bias:0"], 0)
        if number == (2 if block <= 2 else 3):  # block end: 2x2 max-pool
            n, h, wd, c = y.shape
            y = y.reshape(n, h // 2, 2, wd // 2, 2, c).max(axis=(2, 4))
    features = y.mean(axis=(1, 2)).reshape(batch, depth, -1)
    cell = "lstm_2/lstm_2/lstm_cell_2"
    kernel, recurrent, bias = w[f"{cell}/kernel:0"], w[f"{cell}/recurrent_kernel:0"], w[f"{cell}/bias:0"]
    h = c = np.zeros((batch, HIDDEN))
    for t in range(depth):
        i, f, g, o = np.split(features[:, t] @ kernel + h @ recurrent + bias, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
    hidden = np.maximum(h @ w["dense_4/dense_4/kernel:0"] + w["dense_4/dense_4/bias:0"], 0)
    logits = hidden @ w["tb_output/tb_output/kernel:0"] + w["tb_output/tb_output/bias:0"]
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def test_converted_softmax_matches_keras_forward(tmp_path):
    weights = keras_weights()
    model = load_keras_h5(write_h5(tmp_path / "ViPTT-Net-CLEF-TBT.h5", weights)).eval()
    assert model.num_classes == CLASSES and model.config.head_hidden == DENSE
    x = np.random.default_rng(1).random((2, 3, 32, 32, 1), dtype=np.float32)  # Keras: channels last
    expected = keras_forward(weights, x)
    ours = model.predict_proba(torch.from_numpy(x).permute(0, 4, 1, 2, 3).contiguous()).numpy()
    assert np.abs(ours - expected).max() < 1e-4
    assert torch.equal(model.aggregator.rnn.bias_hh_l0, torch.zeros(4 * HIDDEN))


def test_cli_convert_writes_save_pretrained_folder(tmp_path):
    from slicevid import SliceSequenceClassifier
    from slicevid.cli import main

    h5 = write_h5(tmp_path / "m.h5", keras_weights())
    assert main(["convert-keras", str(h5), str(tmp_path / "out")]) == 0
    loaded = SliceSequenceClassifier.from_pretrained(tmp_path / "out")
    assert loaded.num_classes == CLASSES


def test_missing_weight_is_named(tmp_path):
    weights = keras_weights()
    del weights["time_distributed_1/block3_conv2/kernel:0"]
    with pytest.raises(CheckpointError, match="block3_conv2/kernel"):
        load_keras_h5(write_h5(tmp_path / "m.h5", weights))


def test_misshaped_weight_is_named(tmp_path):
    weights = keras_weights()
    weights["lstm_2/lstm_2/lstm_cell_2/kernel:0"] = np.zeros((256, 4 * HIDDEN), np.float32)
    with pytest.raises(CheckpointError, match=r"lstm_cell_2/kernel:0 has shape \(256, 64\), expected \(512, 64\)"):
        load_keras_h5(write_h5(tmp_path / "m.h5", weights))


def test_not_hdf5_and_missing_file(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"definitely not hdf5")
    with pytest.raises(CheckpointError, match="not an HDF5 file"):
        load_keras_h5(bad)
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        load_keras_h5(tmp_path / "nope.h5")


def test_file_without_lstm(tmp_path):
    weights = {k: v for k, v in keras_weights().items() if "lstm" not in k}
    with pytest.raises(CheckpointError, match="no LSTM recurrent_kernel"):
        load_keras_h5(write_h5(tmp_path / "m.h5", weights))


def vgg_notop_h5(path, weights, style):
    """A Keras VGG-16 no-top weights file: ``kernel:0`` one level deeper, or the older ``_W_1:0`` names."""
    with h5py.File(path, "w") as handle:
        names = []
        for block, number in VGG16_BLOCKS:
            layer = f"block{block}_conv{number}"
            names.append(layer.encode())
            kernel, bias = (
                weights[f"time_distributed_1/{layer}/kernel:0"],
                weights[f"time_distributed_1/{layer}/bias:0"],
            )
            group = handle.create_group(layer)
            if style == "nested":
                group.create_dataset(f"{layer}/kernel:0", data=kernel)
                group.create_dataset(f"{layer}/bias:0", data=bias)
            else:
                group.create_dataset(f"{layer}_W_1:0", data=kernel)
                group.create_dataset(f"{layer}_b_1:0", data=bias)
        handle.attrs["layer_names"] = names
    return path


def numpy_vgg_features(weights, images):
    """Keras VGG16(include_top=False, pooling="avg") on channels-last images, in numpy."""
    y = images.astype(np.float64)
    for block, number in VGG16_BLOCKS:
        name = f"time_distributed_1/block{block}_conv{number}"
        padded = np.pad(y, ((0, 0), (1, 1), (1, 1), (0, 0)))
        windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))
        y = np.maximum(
            np.einsum("nhwcij,ijco->nhwo", windows, weights[f"{name}/kernel:0"]) + weights[f"{name}/bias:0"], 0
        )
        if number == (2 if block <= 2 else 3):
            n, h, w, c = y.shape
            y = y.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
    return y.mean(axis=(1, 2))


@pytest.mark.parametrize("style", ["nested", "legacy"])
def test_keras_vgg16_notop_weights(tmp_path, style):
    from slicevid.encoders import create_encoder

    weights = keras_weights()
    path = vgg_notop_h5(tmp_path / "vgg16_notop.h5", weights, style)
    encoder = create_encoder("vgg16", weights=path).eval()
    images = np.random.default_rng(2).random((2, 32, 32, 3), dtype=np.float32)
    expected = numpy_vgg_features(weights, images)
    ours = encoder(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()).detach().numpy()
    assert np.abs(ours - expected).max() <= 1e-4 * np.abs(expected).max()


def test_keras_imagenet_from_the_keras_cache(tmp_path, monkeypatch):
    from slicevid import WeightsNotFoundError
    from slicevid.encoders import create_encoder

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match=r"models/vgg16_weights_tf_dim_ordering_tf_kernels_notop\.h5"):
        create_encoder("vgg16", weights="keras-imagenet")
    (tmp_path / "models").mkdir()
    weights = keras_weights()
    vgg_notop_h5(tmp_path / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", weights, "nested")
    encoder = create_encoder("vgg16", weights="keras-imagenet")
    expected = weights["time_distributed_1/block5_conv3/kernel:0"].transpose(3, 2, 0, 1)
    assert np.array_equal(encoder.features[28].weight.detach().numpy(), expected)


def test_converted_checkpoint_knows_what_the_authors_trained_it_on(tmp_path):
    from slicevid.data import TB_CLASSES

    model = load_keras_h5(write_h5(tmp_path / "m.h5", keras_weights()))
    assert model.config.class_names == TB_CLASSES and model.config.input_size == (70, 224, 224)
    assert model.config.preprocessing.rotate90 and model.config.preprocessing.zoom_mode == "constant"
