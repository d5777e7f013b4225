"""The training recipe as Keras ran it: class-weight semantics, plateau and early-stopping timing,
initialisation; and the options beside it (optimizers, precise BatchNorm)."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from slicevid import create_model
from slicevid.presets import viptt_net
from slicevid.train import Evaluation, TrainConfig, fit
from slicevid.train.losses import class_weighted_cross_entropy
from slicevid.train.optim import PlateauLR

from .helpers import plain_model, toy_data

pytestmark = pytest.mark.usefixtures("plain_cnn_encoder")

PAPER_WEIGHTS = torch.tensor([0.437, 0.813, 1.807, 1.830, 2.614])


def test_keras_class_weights_are_a_weighted_mean():
    logits, targets = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 4])
    ce = nn.functional.cross_entropy(logits, targets, reduction="none")
    w = PAPER_WEIGHTS[targets]
    keras = class_weighted_cross_entropy(logits, targets, PAPER_WEIGHTS, "keras")
    normalized = class_weighted_cross_entropy(logits, targets, PAPER_WEIGHTS, "normalized")
    assert torch.isclose(keras, (w * ce).mean()) and torch.isclose(normalized, (w * ce).sum() / w.sum())
    assert torch.isclose(normalized, nn.CrossEntropyLoss(weight=PAPER_WEIGHTS)(logits, targets))


def test_same_class_batch_keeps_its_weight_only_in_keras_mode():
    logits, targets = torch.randn(2, 5), torch.tensor([4, 4])
    plain = nn.functional.cross_entropy(logits, targets)
    assert torch.isclose(class_weighted_cross_entropy(logits, targets, PAPER_WEIGHTS, "keras"), 2.614 * plain)
    assert torch.isclose(class_weighted_cross_entropy(logits, targets, PAPER_WEIGHTS, "normalized"), plain)


def test_class_weight_mode_reaches_training():
    data = TensorDataset(torch.rand(10, 1, 3, 32, 32), torch.tensor([0] * 8 + [1, 2]))
    models = {mode: plain_model() for mode in ("keras", "normalized")}
    for mode, model in models.items():
        fit(
            model,
            data,
            None,
            TrainConfig(epochs=1, batch_size=5, lr=0.05, class_weights=True, class_weight_mode=mode, progress=False),
        )
    assert not torch.equal(models["keras"].head.classifier.bias, models["normalized"].head.classifier.bias)


def _lr_per_epoch(losses):
    """Learning rate of each epoch when the plateau controller sees ``losses`` (Keras's order of events)."""
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1e-3)
    plateau, rates = PlateauLR(optimizer, factor=0.1, patience=5), []
    for loss in losses:
        rates.append(optimizer.param_groups[0]["lr"])
        plateau.step(loss)
    return rates


def test_plateau_cuts_after_patience_epochs_as_keras():
    rates = _lr_per_epoch([1.0] + [1.1] * 9)  # no improvement after epoch 1
    assert rates[:6] == [1e-3] * 6 and rates[6] == pytest.approx(1e-4)


def test_plateau_min_delta_and_cooldown():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    plateau = PlateauLR(optimizer, patience=2, min_delta=0.1, cooldown=2)
    cuts = [plateau.step(loss) for loss in [1.0, 0.95, 0.92, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6]]
    # 0.95 and 0.92 are not better by more than 0.1: the 2nd such epoch cuts. The cooldown epoch after
    # it counts nothing (0.5 still improves); the last cooldown epoch clears the count, as in Keras.
    assert cuts == [False, False, True, False, False, True, False, False, True]


def test_fit_follows_keras_timing(monkeypatch):
    from slicevid.train import engine

    scripted = iter([1.0] + [1.1] * 20)
    real_validate = engine.Trainer.validate

    def validate(self, epoch=None):
        real = real_validate(self, epoch)
        return Evaluation(
            next(scripted) if epoch is not None else real.loss, real.report, real.probabilities, real.labels, real.tasks
        )

    monkeypatch.setattr(engine.Trainer, "validate", validate)
    result = fit(plain_model(), toy_data(), toy_data(seed=1), TrainConfig(epochs=30, progress=False))
    # ReduceLROnPlateau(patience=5): epochs 1-6 at 1e-3, then 1e-4; EarlyStopping(patience=8): stop after epoch 9
    assert [row["lr"] for row in result.history] == pytest.approx([1e-3] * 6 + [1e-4] * 3)
    assert result.stopped_early and result.best_epoch == 1 and result.best_val_loss == 1.0


def test_keras_initialisation():
    model = viptt_net(10, init="keras")
    rnn = model.aggregator.rnn
    hidden = rnn.hidden_size
    assert torch.all(rnn.bias_ih_l0[hidden : 2 * hidden] == 1) and torch.all(rnn.bias_hh_l0 == 0)
    recurrent = rnn.weight_hh_l0.T  # Keras's (H, 4H) recurrent kernel: orthonormal rows
    assert torch.allclose(recurrent @ recurrent.T, torch.eye(hidden), atol=1e-4)
    for layer in (model.adapter, model.head.hidden, model.head.classifier):
        receptive = layer.weight[0, 0].numel()  # Glorot: U(+-sqrt(6 / (fan_in + fan_out)))
        limit = math.sqrt(6 / ((layer.weight.shape[0] + layer.weight.shape[1]) * receptive))
        assert layer.weight.abs().max() <= limit and torch.all(layer.bias == 0)


@pytest.mark.parametrize(
    ("name", "kind"), [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)]
)
def test_optimizers(name, kind):
    from slicevid.train.optim import make_optimizer

    assert type(make_optimizer(TrainConfig(optimizer=name), [nn.Parameter(torch.zeros(1))])) is kind


def test_precise_bn_recomputes_statistics_over_the_training_data():
    torch.manual_seed(0)
    model = create_model("compact_cnn", "mean", 3, head_hidden=8, encoder_kwargs={"widths": (4, 8)})
    data = toy_data(n=6)
    fit(model, data, data, TrainConfig(epochs=1, batch_size=6, optimizer="adam", precise_bn=1, progress=False))
    first_bn = model.encoder.features[1]
    probe = create_model("compact_cnn", "mean", 3, head_hidden=8, encoder_kwargs={"widths": (4, 8)})
    probe.load_state_dict(model.state_dict())
    probe.encoder.features[1].reset_running_stats()
    probe.encoder.features[1].momentum = None
    with torch.no_grad():
        probe.train()(data.tensors[0])
    assert torch.allclose(first_bn.running_mean, probe.encoder.features[1].running_mean, atol=1e-5)
    assert torch.allclose(first_bn.running_var, probe.encoder.features[1].running_var, atol=1e-5)


def test_reproduction_recipe_follows_the_authors_code():
    from slicevid.recipes import slicevid_recipe, viptt_reproduction

    recipe = viptt_reproduction()
    assert (recipe.encoder_weights, recipe.init, recipe.augment, recipe.submission_ids) == (
        "keras-imagenet",
        "keras",
        "notebook",
        "filename",
    )
    assert recipe.preprocessing.rotate90 and recipe.preprocessing.zoom_mode == "constant"
    assert recipe.video.value_range == (0.0, 255.0) and recipe.video_split == "keras"
    assert (recipe.pretrain.batch_size, recipe.finetune.batch_size) == (1, 2)
    assert recipe.finetune.amp == "off" and recipe.finetune.class_weight_mode == "keras"
    assert recipe.configurations["No PT"].frozen_encoder and recipe.test_nan_policy == "replace"
    assert not recipe.configurations["No PT (scratch)"].encoder_weights
    assert (recipe.labels.label_column, recipe.labels.first_label) == ("TypeOfTB", 1)
    ours = slicevid_recipe()
    assert not ours.preprocessing.rotate90 and ours.encoder_weights == "imagenet"
