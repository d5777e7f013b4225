"""``fit`` and ``evaluate``: the training loop behind every stage and the CLI.

One loop serves one CPU, one GPU and many GPUs under torchrun. Each epoch reseeds from
``config.seed + epoch`` (shuffling, augmentation, dropout), and the last checkpoint holds
the model, the best weights, the optimizer, the scheduler and the early-stopping counters,
so a resumed run reaches the same weights as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from .._io import atomic_write_text
from ..augment import RandomAxialRotation
from ..data.imageclef import balanced_class_weights
from ..errors import TrainingDivergedError
from ..model import SliceSequenceClassifier
from .checkpoint import LAST_CHECKPOINT, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .distributed import (
    DistributedContext,
    all_ranks_agree,
    broadcast_buffers,
    gather_tensors,
    resolve_device,
    setup_distributed,
)
from .evaluation import (
    Evaluation,
    autocast,
    autocast_dtype_for,
    class_names_for,
    dataset_labels,
    make_evaluation,
    predict_logits,
)
from .features import extract_features
from .plots import plot_confusion_matrix, plot_slice_montage, plot_training_curves


@dataclass
class FitResult:
    """What ``fit`` returns; the model itself holds the best weights afterwards."""

    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_loss: float = math.inf
    evaluation: Evaluation | None = None
    out_dir: Path | None = None
    stopped_early: bool = False


class _HeadOnly(nn.Module):
    """Routes cached features through the aggregator and head (what DDP wraps then)."""

    def __init__(self, model: SliceSequenceClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(features)


def _train_loader(dataset: Dataset, config: TrainConfig, context: DistributedContext, epoch: int) -> DataLoader:
    if context.enabled:
        sampler = DistributedSampler(dataset, context.world_size, context.rank, shuffle=True, seed=config.seed)
        sampler.set_epoch(epoch)
        return DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.num_workers)
    generator = torch.Generator().manual_seed(config.seed + epoch)
    return DataLoader(dataset, batch_size=config.batch_size, shuffle=True, generator=generator,
                      num_workers=config.num_workers)


def _make_augmentation(kind: str) -> RandomAxialRotation | None:
    return {"none": None, "paper": RandomAxialRotation(), "notebook": RandomAxialRotation.notebook_variant()}[kind]


class _Trainer:
    """State of one ``fit`` call; its methods are the steps of the loop."""

    def __init__(self, model, train_data, val_data, config: TrainConfig, class_names) -> None:
        self.model, self.config = model, config
        self.device = resolve_device(config.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.context = setup_distributed(self.device)
        self.out_dir = Path(config.out_dir) if config.out_dir else None
        self.writes = self.out_dir is not None and self.context.is_main
        self.class_names = class_names_for(model, train_data, class_names)
        self.autocast_dtype = autocast_dtype_for(config.amp, self.device)
        self.augmentation = _make_augmentation(config.augment)
        model.to(self.device)
        if config.channels_last:
            model.channels_last = True
            model.encoder.to(memory_format=torch.channels_last)
        self.network: nn.Module = model
        self.raw_train_data = train_data  # before any feature caching: for the montage
        if config.feature_cache:
            train_data, val_data = self._cache_features(train_data, val_data)
        self.train_data, self.val_data = train_data, val_data
        weights = None
        if config.class_weights:
            weights = balanced_class_weights(dataset_labels(train_data), model.num_classes).to(self.device)
        self.criterion = nn.CrossEntropyLoss(weight=weights)
        trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(trainable, lr=config.lr, momentum=config.momentum,
                                         weight_decay=config.weight_decay)
        self.scheduler = None
        if val_data is not None:
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, mode="min", factor=config.plateau_factor, patience=config.plateau_patience)
        self.module = self.network
        if self.context.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.module = nn.parallel.DistributedDataParallel(self.network, device_ids=ids)
        if config.compile:
            self.module = torch.compile(self.module)
        self.progress = {"epoch": 0, "best_val_loss": math.inf, "best_epoch": None, "bad_epochs": 0, "history": []}
        self.best_state = self._snapshot()

    def _cache_features(self, train_data, val_data):
        if self.config.augment != "none":
            raise ValueError("feature_cache needs augment='none': augmented inputs change the features every epoch")
        kwargs = {"batch_size": max(self.config.batch_size, 8), "device": self.device,
                  "autocast_dtype": self.autocast_dtype, "num_workers": self.config.num_workers,
                  "progress": self.config.progress and self.context.is_main}
        self.network = _HeadOnly(self.model)
        cached_val = extract_features(self.model, val_data, **kwargs) if val_data is not None else None
        return extract_features(self.model, train_data, **kwargs), cached_val

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / LAST_CHECKPOINT if self.out_dir else None

    def maybe_resume(self) -> None:
        path = self.checkpoint_path
        if not (self.config.resume and path and path.is_file()):
            return
        state = load_checkpoint(path)
        self.model.load_state_dict(state["model"])
        self.best_state = state["best"]
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.progress = state["progress"]
        if self.context.is_main and self.config.progress:
            print(f"Resuming {path} after epoch {self.progress['epoch']}")

    def train_epoch(self, epoch: int) -> float:
        from tqdm.auto import tqdm

        torch.manual_seed(self.config.seed + epoch)  # dropout and any model randomness
        augment_rng = torch.Generator().manual_seed(10_007 * (self.config.seed + 1) + epoch)
        loader = _train_loader(self.train_data, self.config, self.context, epoch)
        self.module.train()
        self.optimizer.zero_grad(set_to_none=True)
        total, count = torch.zeros(1, dtype=torch.float64), 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{self.config.epochs}", unit="batch", leave=False,
                   disable=not (self.config.progress and self.context.is_main))
        for step, (inputs, targets) in enumerate(bar):
            inputs, targets = inputs.to(self.device, non_blocking=True), targets.to(self.device)
            if self.augmentation is not None:
                inputs = self.augmentation(inputs, generator=augment_rng)
            with autocast(self.device, self.autocast_dtype):
                logits = self.module(inputs)
            loss = self.criterion(logits.float(), targets)
            if not all_ranks_agree(self.context, bool(torch.isfinite(loss))):
                raise TrainingDivergedError(self._diverged_message(epoch, step, loss))
            (loss / self.config.grad_accum).backward()
            if (step + 1) % self.config.grad_accum == 0 or step + 1 == len(loader):
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            total += loss.detach().double().cpu() * len(targets)
            count += len(targets)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        broadcast_buffers(self.context, self.model)
        sums = gather_tensors(self.context, torch.cat([total, torch.tensor([float(count)], dtype=torch.float64)]))[0]
        sums = sums.view(-1, 2).sum(0)
        return float(sums[0] / sums[1])

    def _diverged_message(self, epoch: int, step: int, loss: torch.Tensor) -> str:
        done = self.progress["epoch"]
        where = f"{self.checkpoint_path} (epoch {done})" if self.writes and done else "none written by this run yet"
        return (f"Training loss became {loss.item()} at epoch {epoch + 1}, batch {step + 1}. "
                f"Last good checkpoint: {where}. Lower the learning rate or check the inputs for NaNs.")

    def validate(self) -> Evaluation:
        logits, labels = predict_logits(self.network, self.val_data, batch_size=self.config.batch_size,
                                  device=self.device, autocast_dtype=self.autocast_dtype, context=self.context,
                                  num_workers=self.config.num_workers)
        return make_evaluation(logits, labels, self.class_names)

    def end_epoch(self, epoch: int, train_loss: float, started: float) -> bool:
        """Record the epoch, step the scheduler, keep the best weights; True means stop."""
        row = {"epoch": epoch + 1, "train_loss": train_loss, "lr": self.optimizer.param_groups[0]["lr"]}
        improved = True
        if self.val_data is not None:
            evaluation = self.validate()
            row.update(val_loss=evaluation.loss, val_kappa=evaluation.report.kappa,
                       val_accuracy=evaluation.report.accuracy)
            self.scheduler.step(evaluation.loss)
            improved = evaluation.loss < self.progress["best_val_loss"]
            if improved:
                self.progress["best_val_loss"] = evaluation.loss
        row["seconds"] = round(time.perf_counter() - started, 3)
        progress = self.progress
        progress["history"].append(row)
        progress["epoch"] = epoch + 1
        if improved:
            progress["best_epoch"], progress["bad_epochs"] = epoch + 1, 0
            self.best_state = self._snapshot()
            if self.writes:
                self._save_best()
        else:
            progress["bad_epochs"] += 1
        if self.writes:
            save_checkpoint(self.checkpoint_path, model=self.model, best_state=self.best_state,
                            optimizer=self.optimizer, scheduler=self.scheduler, progress=progress)
            _write_history_csv(self.out_dir / "metrics.csv", progress["history"])
        if self.context.is_main and self.config.progress:
            print(_epoch_line(row, self.config.epochs))
        patience = self.config.early_stopping_patience
        progress["stopped_early"] = bool(patience) and self.val_data is not None and progress["bad_epochs"] >= patience
        return progress["stopped_early"]

    def _save_best(self) -> None:
        try:
            self.model.save_pretrained(self.out_dir / "best")
        except ValueError as err:  # a model built from anonymous modules: the checkpoint still has it
            warnings.warn(f"Best weights kept only in {LAST_CHECKPOINT}: {err}", stacklevel=2)

    def finish(self, stopped_early: bool) -> FitResult:
        self.model.load_state_dict(self.best_state)  # restore the best weights, as Keras' EarlyStopping
        result = FitResult(self.progress["history"], self.progress["best_epoch"], self.progress["best_val_loss"],
                           out_dir=self.out_dir, stopped_early=stopped_early)
        if self.val_data is not None:
            result.evaluation = self.validate()
        if self.writes:
            self.config.save(self.out_dir / "config.yaml")
            if result.history:
                plot_training_curves(result.history, self.out_dir / "curves.png")
            if result.evaluation is not None:
                result.evaluation.report.save_json(self.out_dir / "report.json")
                plot_confusion_matrix(result.evaluation.report, self.out_dir / "confusion.png")
            self._plot_sample()
        return result

    def _plot_sample(self) -> None:
        """Slices of the first training sample, in order (like the paper's Figure 2)."""
        volume, label = self.raw_train_data[0]
        if isinstance(volume, torch.Tensor) and volume.ndim == 4 and volume.shape[0] == 1:
            name = self.class_names[int(label)] if 0 <= int(label) < len(self.class_names) else str(label)
            plot_slice_montage(volume[0].float().numpy(), self.out_dir / "montage.png",
                               title=f"first training sample (class {name})")


def _epoch_line(row: dict, epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"train_loss {row['train_loss']:.4f}"]
    if "val_loss" in row:
        parts += [f"val_loss {row['val_loss']:.4f}", f"val_kappa {row['val_kappa']:.3f}"]
    return " | ".join([*parts, f"lr {row['lr']:.2g}", f"{row['seconds']:.1f}s"])


def _write_history_csv(path: Path, history: list[dict]) -> None:
    columns = list(dict.fromkeys(key for row in history for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buffer.getvalue())


def fit(
    model: SliceSequenceClassifier,
    train_data: Dataset,
    val_data: Dataset | None = None,
    config: TrainConfig | None = None,
    *,
    class_names=None,
) -> FitResult:
    """Train ``model`` on ``train_data``, validating on ``val_data`` after each epoch.

    The learning rate drops by ``plateau_factor`` when the validation loss stalls, training
    stops after ``early_stopping_patience`` epochs without improvement, and the model ends
    with the weights of its best validation loss. With ``config.out_dir`` the run folder
    receives ``last.safetensors`` (resumable), ``best/`` (``save_pretrained`` format),
    ``metrics.csv``, ``config.yaml``, ``report.json``, ``curves.png``, ``confusion.png`` and
    ``montage.png`` (the slices of the first training sample).

    Raises:
        TrainingDivergedError: the loss became NaN or infinite; the last good checkpoint stays.
    """
    config = config or TrainConfig()
    trainer = _Trainer(model, train_data, val_data, config, class_names)
    trainer.maybe_resume()
    stopped = trainer.progress.get("stopped_early", False)  # a resumed run that had already stopped
    for epoch in range(trainer.progress["epoch"], config.epochs):
        if stopped:
            break
        started = time.perf_counter()
        stopped = trainer.end_epoch(epoch, trainer.train_epoch(epoch), started)
    return trainer.finish(stopped)
