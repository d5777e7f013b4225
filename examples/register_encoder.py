"""Register your own slice encoder and build models with it by name (saveable and reloadable).

An encoder is any nn.Module mapping (N, 3, H, W) slices to (N, F) features that has an
integer ``num_features``.

    python examples/register_encoder.py
"""

import tempfile

import torch
from torch import nn

from slicevid import SliceSequenceClassifier, create_model
from slicevid.encoders import list_encoders, register_encoder


# --8<-- [start:register]
@register_encoder("tiny_cnn")
def tiny_cnn(width: int = 16) -> nn.Module:
    encoder = nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    encoder.num_features = 2 * width
    return encoder


# --8<-- [end:register]


# --8<-- [start:use]
print("registered encoders:", list_encoders())
model = create_model("tiny_cnn", "lstm", num_classes=3, encoder_kwargs={"width": 8})
volume = torch.rand(2, 1, 10, 32, 32)  # (B, C, D, H, W)
print("logits:", model(volume).shape)

with tempfile.TemporaryDirectory() as folder:
    model.save_pretrained(folder)  # config.json + model.safetensors; the encoder is rebuilt by name
    again = SliceSequenceClassifier.from_pretrained(folder)
    model.eval(), again.eval()
    print("reloaded model gives identical outputs:", torch.equal(model(volume), again(volume)))
# --8<-- [end:use]
