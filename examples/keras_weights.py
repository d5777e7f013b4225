"""Load the authors' published Keras checkpoints into PyTorch, with h5py only.

    python examples/keras_weights.py ViPTT-Net-CLEF-TBT.h5    # the authors' file
    python examples/keras_weights.py                          # a self-made file in the same layout

Without an argument the example writes a randomly initialised ViPTT-Net in the layout the
authors' ``model.save("x.h5")`` produced (Keras 2 / TF 2.4), loads it back with
``load_keras_h5`` and checks that the outputs agree, which shows the weight mapping:
Keras kernels are (in, out), conv kernels (kh, kw, in, out), inputs channels-last.
"""

import sys
import tempfile
from pathlib import Path

import h5py
import torch

from slicevid.convert import load_keras_h5
from slicevid.encoders.vgg import VGG16_BLOCKS, VGG16_CONV_INDICES
from slicevid.presets import viptt_net


def write_keras_layout(model, path: Path) -> None:
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    with h5py.File(path, "w") as handle:
        weights = handle.create_group("model_weights")
        weights["conv3d/conv3d/kernel:0"] = state["adapter.weight"].transpose(2, 3, 4, 1, 0)
        weights["conv3d/conv3d/bias:0"] = state["adapter.bias"]
        for index, (block, number) in zip(VGG16_CONV_INDICES, VGG16_BLOCKS, strict=True):
            name = f"time_distributed/block{block}_conv{number}"
            weights[f"{name}/kernel:0"] = state[f"encoder.features.{index}.weight"].transpose(2, 3, 1, 0)
            weights[f"{name}/bias:0"] = state[f"encoder.features.{index}.bias"]
        cell = "lstm/lstm/lstm_cell"  # Keras has one bias: PyTorch's two add up
        weights[f"{cell}/kernel:0"] = state["aggregator.rnn.weight_ih_l0"].T
        weights[f"{cell}/recurrent_kernel:0"] = state["aggregator.rnn.weight_hh_l0"].T
        weights[f"{cell}/bias:0"] = state["aggregator.rnn.bias_ih_l0"] + state["aggregator.rnn.bias_hh_l0"]
        for layer, prefix in (("dense", "head.hidden"), ("dense_1", "head.classifier")):
            weights[f"{layer}/{layer}/kernel:0"] = state[f"{prefix}.weight"].T
            weights[f"{layer}/{layer}/bias:0"] = state[f"{prefix}.bias"]


# --8<-- [start:load]
if len(sys.argv) > 1:
    model = load_keras_h5(sys.argv[1])
    model.save_pretrained("viptt-from-keras")  # reload with SliceSequenceClassifier.from_pretrained
    print(f"loaded {sys.argv[1]}: {model.num_classes} classes; saved to viptt-from-keras/")
# --8<-- [end:load]
else:
    with tempfile.TemporaryDirectory() as tmp:
        original = viptt_net(5).eval()
        path = Path(tmp) / "viptt-keras-layout.h5"
        write_keras_layout(original, path)
        model = load_keras_h5(path).eval()
        volume = torch.rand(1, 1, 4, 32, 32)
        difference = (model.predict_proba(volume) - original.predict_proba(volume)).abs().max().item()
        print(f"round trip through the Keras layout: max probability difference {difference:.2e}")
