"""``fit``: the training loop behind every stage and the CLI.

One loop serves one CPU, one GPU and many GPUs under torchrun. Each epoch reseeds from
``config.seed + epoch`` (shuffling, augmentation, dropout), and the last checkpoint holds
the model, the best weights, the optimizer and the :class:`TrainState`, so a resumed run
reaches the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..augment import make_augmentation
from ..devices import autocast, autocast_dtype_for, resolve_device
from ..errors import ConfigError, DataError, RunFolderError, TrainingDivergedError
from ..metrics import balanced_class_weights
from ..model import SliceSequenceClassifier
from .checkpoint import LAST_CHECKPOINT, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .datasets import class_names_for, dataset_labels, input_spec
from .distributed import all_ranks_agree, broadcast_buffers, gather_tensors, setup_distributed
from .evaluation import Evaluation, make_evaluation, predict_logits
from .features import HeadOnly, extract_features
from .loaders import collate_for, training_loader
from .losses import class_weighted_cross_entropy
from .optim import PlateauLR, make_optimizer
from .precise_bn import recompute_batchnorm
from .reporting import epoch_line, write_history_csv, write_run_plots
from .run_folder import open_run_folder
from .state import FitResult, TrainState

DIVERGENCE_FACTOR = 1e3
"""A batch loss this many times the run's first one means training diverged."""


class _Trainer:
    """State of one ``fit`` call; its methods are the steps of the loop.

    ``model`` is the user's :class:`SliceSequenceClassifier`; ``network`` is the module the
    forward and backward passes call (the model, or its head alone on cached features,
    possibly wrapped by DDP or ``torch.compile``).
    """

    def __init__(
        self,
        model: SliceSequenceClassifier,
        train_data: Dataset,
        val_data: Dataset | None,
        config: TrainConfig,
        class_names,
        out_dir: Path | None,
    ) -> None:
        self.model, self.config, self.out_dir = model, config, out_dir
        self.device = resolve_device(config.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.context = setup_distributed(self.device)
        self.writes = out_dir is not None and self.context.is_main
        self.verbose = config.progress and self.context.is_main
        names = class_names_for(model.num_classes, train_data, class_names, model.config.class_names)
        model.config = model.config.replace(class_names=names, **input_spec(train_data))
        self.autocast_dtype = autocast_dtype_for(config.amp, self.device)
        self.augmentation = make_augmentation(config.augment)
        model.to(self.device)
        if config.channels_last:
            model.set_slice_execution(chunk=model.slice_chunk, checkpoint=model.checkpoint_slices, channels_last=True)
        self.raw_train_data = train_data  # before any feature caching: for the montage
        self.network: nn.Module = model
        if config.feature_cache:
            train_data, val_data = self._cache_features(train_data, val_data)
        self.train_data, self.val_data = train_data, val_data
        self.class_weights = None
        if config.class_weights:
            self.class_weights = balanced_class_weights(dataset_labels(train_data), model.num_classes).to(self.device)
        self.optimizer = make_optimizer(config, [p for p in model.parameters() if p.requires_grad])
        self.plateau = PlateauLR(
            self.optimizer,
            config.plateau_factor,
            config.plateau_patience,
            config.plateau_min_delta,
            config.plateau_cooldown,
        )
        if self.context.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.network = nn.parallel.DistributedDataParallel(self.network, device_ids=ids)
        if config.compile:
            self.network = torch.compile(self.network)
        self.state = TrainState()
        self.best_weights = self._snapshot()

    def _cache_features(self, train_data, val_data):
        if self.config.augment != "none":
            raise ConfigError("feature_cache", "needs augment='none': augmented inputs change the features every epoch")
        kwargs = {
            "batch_size": max(self.config.batch_size, 8),
            "device": self.device,
            "autocast_dtype": self.autocast_dtype,
            "num_workers": self.config.num_workers,
            "progress": self.verbose,
        }
        self.network = HeadOnly(self.model)
        cached_val = extract_features(self.model, val_data, **kwargs) if val_data is not None else None
        return extract_features(self.model, train_data, **kwargs), cached_val

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _loader(self, dataset: Dataset, epoch: int) -> DataLoader:
        return training_loader(
            dataset,
            batch_size=self.config.batch_size,
            seed=self.config.seed,
            epoch=epoch,
            context=self.context,
            num_workers=self.config.num_workers,
        )

    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / LAST_CHECKPOINT if self.out_dir else None

    # ------------------------------------------------------------------ resume
    def maybe_resume(self) -> None:
        path = self.checkpoint_path
        if not (self.config.resume and path and path.is_file()):
            return
        saved = load_checkpoint(path)
        differences = saved["model_config"].architecture_differences(self.model.config)
        if differences:
            raise RunFolderError(
                f"--resume: {path} was trained with another architecture ({'; '.join(differences)}, "
                "saved vs now); use the saved settings or --overwrite"
            )
        self.model.load_state_dict(saved["model"])
        self.best_weights = saved["best"]
        self.optimizer.load_state_dict(saved["optimizer"])
        self.state = saved["state"]
        if self.state.plateau:
            self.plateau.load_state_dict(self.state.plateau)
        if self.verbose:
            print(f"Resuming {path} after epoch {self.state.epoch}")

    # ------------------------------------------------------------------ one epoch
    def train_epoch(self, epoch: int) -> float:
        from tqdm.auto import tqdm

        torch.manual_seed(self.config.seed + epoch)  # dropout and any model randomness
        augment_rng = torch.Generator().manual_seed(10_007 * (self.config.seed + 1) + epoch)
        loader = self._loader(self.train_data, epoch)
        self.network.train()
        self.optimizer.zero_grad(set_to_none=True)
        total, count = torch.zeros(1, dtype=torch.float64), 0
        bar = tqdm(
            loader, desc=f"epoch {epoch + 1}/{self.config.epochs}", unit="batch", leave=False, disable=not self.verbose
        )
        for step, (inputs, targets, lengths) in enumerate(bar):
            inputs, targets = inputs.to(self.device, non_blocking=True), targets.to(self.device)
            lengths = lengths.to(self.device) if lengths is not None else None
            if self.augmentation is not None:
                inputs = self.augmentation(inputs, generator=augment_rng, lengths=lengths)
            loss = self._loss(inputs, targets, lengths)
            self._check_loss(loss, epoch, step)
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

    def _loss(self, inputs: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        if bool(((targets < 0) | (targets >= self.model.num_classes)).any()):
            raise DataError(
                f"training labels {sorted(set(targets.tolist()))} include values outside "
                f"0..{self.model.num_classes - 1} for a {self.model.num_classes}-class model"
            )
        with autocast(self.device, self.autocast_dtype):
            logits = self.network(inputs, lengths)
        return class_weighted_cross_entropy(logits.float(), targets, self.class_weights, self.config.class_weight_mode)

    def _check_loss(self, loss: torch.Tensor, epoch: int, step: int) -> None:
        value = float(loss.detach())
        if self.state.initial_loss is None:
            self.state.initial_loss = value
        exploded = math.isfinite(value) and value > DIVERGENCE_FACTOR * max(self.state.initial_loss, 1e-3)
        if all_ranks_agree(self.context, math.isfinite(value) and not exploded):
            return
        done = self.state.epoch
        where = f"{self.checkpoint_path} (epoch {done})" if self.writes and done else "none written by this run yet"
        what = f"exploded from {self.state.initial_loss:.4g} to {value:.4g}" if exploded else f"became {value}"
        raise TrainingDivergedError(
            f"Training loss {what} at epoch {epoch + 1}, batch {step + 1}. "
            f"Last good checkpoint: {where}. Lower the learning rate or check the inputs."
        )

    def recompute_batchnorm(self, epoch: int) -> None:
        """Precise BatchNorm before validating: statistics of ``precise_bn`` training batches (see ``precise_bn``)."""
        self.network.train()

        def run(batch: tuple) -> None:
            inputs, _, lengths = batch
            with autocast(self.device, self.autocast_dtype):
                self.network(inputs.to(self.device), lengths.to(self.device) if lengths is not None else None)

        if recompute_batchnorm(
            self.model, run, self._loader(self.train_data, epoch + 1_000_003), self.config.precise_bn
        ):
            broadcast_buffers(self.context, self.model)

    def validate(self, epoch: int | None = None) -> Evaluation:
        logits, labels = predict_logits(
            self.network,
            self.val_data,
            batch_size=self.config.batch_size,
            device=self.device,
            autocast_dtype=self.autocast_dtype,
            context=self.context,
            num_workers=self.config.num_workers,
            collate=collate_for(self.val_data),
        )
        evaluation = make_evaluation(logits, labels, self.model.config.class_names)
        if epoch is not None and not math.isfinite(evaluation.loss):
            raise TrainingDivergedError(
                f"Validation loss became {evaluation.loss} after epoch {epoch + 1}: the "
                "validation data hold NaN or infinite values, or the model produces them"
            )
        return evaluation

    # ------------------------------------------------------------------ end of an epoch
    def record(self, epoch: int, train_loss: float, started: float) -> dict:
        """The epoch's history row (validating first, when there is validation data)."""
        row = {"epoch": epoch + 1, "train_loss": train_loss, "lr": self.optimizer.param_groups[0]["lr"]}
        if self.val_data is not None:
            self.recompute_batchnorm(epoch)
            evaluation = self.validate(epoch)
            row.update(
                val_loss=evaluation.loss, val_kappa=evaluation.report.kappa, val_accuracy=evaluation.report.accuracy
            )
        row["seconds"] = round(time.perf_counter() - started, 3)
        self.state.history.append(row)
        self.state.epoch = epoch + 1
        if self.verbose:
            print(epoch_line(row, self.config.epochs))
        return row

    def update_best(self, row: dict) -> None:
        """Keep the weights of the lowest validation loss (the last epoch's without validation data)."""
        loss = row.get("val_loss")
        if loss is not None:
            self.plateau.step(loss)
            self.state.plateau = self.plateau.state_dict()
        if loss is None or loss < self.state.best_val_loss:
            self.state.best_epoch, self.state.bad_epochs = row["epoch"], 0
            self.state.best_val_loss = math.inf if loss is None else loss
            self.best_weights = self._snapshot()
            if self.writes:
                self._save_best()
        else:
            self.state.bad_epochs += 1

    def save(self) -> None:
        if not self.writes:
            return
        save_checkpoint(
            self.checkpoint_path,
            model=self.model,
            best_state=self.best_weights,
            optimizer=self.optimizer,
            state=self.state,
            model_config=self.model.config,
        )
        write_history_csv(self.out_dir / "metrics.csv", self.state.history)

    def should_stop(self) -> bool:
        patience = self.config.early_stopping_patience
        self.state.stopped = bool(patience) and self.val_data is not None and self.state.bad_epochs >= patience
        return self.state.stopped

    def _save_best(self) -> None:
        try:
            self.model.save_pretrained(self.out_dir / "best")
        except ValueError as err:  # a model built from anonymous modules: the checkpoint still has it
            warnings.warn(f"Best weights kept only in {LAST_CHECKPOINT}: {err}", stacklevel=2)

    # ------------------------------------------------------------------ the end
    def finish(self) -> FitResult:
        self.model.load_state_dict(self.best_weights)  # restore the best weights, as Keras' EarlyStopping
        evaluation = self.validate() if self.val_data is not None else None
        if self.writes:
            write_run_plots(
                self.out_dir, self.state.history, evaluation, self.raw_train_data[0], self.model.config.class_names
            )
        return FitResult.from_state(self.state, evaluation, self.out_dir)


def fit(
    model: SliceSequenceClassifier,
    train_data: Dataset,
    val_data: Dataset | None = None,
    config: TrainConfig | None = None,
    *,
    class_names: Sequence[str] | None = None,
) -> FitResult:
    """Train ``model`` on ``train_data``, validating on ``val_data`` after each epoch.

    The learning rate drops by ``plateau_factor`` when the validation loss stalls, training
    stops after ``early_stopping_patience`` epochs without improvement, and the model ends
    with the weights of its best validation loss. The model's config receives the class
    names and the input description of ``train_data``. With ``config.out_dir`` the run
    folder receives ``last.safetensors`` (resumable), ``best/`` (``save_pretrained`` format),
    ``metrics.csv``, ``config.yaml``, ``report.json``, ``curves.png``, ``confusion.png`` and
    ``montage.png`` (the slices of the first training sample).

    Raises:
        TrainingDivergedError: the loss became NaN, infinite or exploded; the last good checkpoint stays.
        RunFolderError: ``out_dir`` holds another run (without ``resume`` / ``overwrite``) or is in use.
    """
    config = config or TrainConfig()
    if len(train_data) == 0:
        raise DataError("Cannot train on an empty dataset (no samples in the training split)")
    main_process = setup_distributed(resolve_device(config.device)).is_main
    folder = (
        open_run_folder(config.out_dir, resume=config.resume, overwrite=config.overwrite)
        if config.out_dir and main_process
        else contextlib.nullcontext(Path(config.out_dir) if config.out_dir else None)
    )
    with folder as out_dir:
        trainer = _Trainer(model, train_data, val_data, config, class_names, out_dir)
        if trainer.writes:
            config.save(out_dir / "config.yaml")
        trainer.maybe_resume()
        for epoch in range(trainer.state.epoch, config.epochs):
            if trainer.state.stopped:
                break
            started = time.perf_counter()
            row = trainer.record(epoch, trainer.train_epoch(epoch), started)
            trainer.update_best(row)
            trainer.should_stop()
            trainer.save()
        return trainer.finish()
