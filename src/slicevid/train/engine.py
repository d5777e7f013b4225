"""``fit``: the training loop behind every stage, the runner and the CLI.

One loop serves one CPU, one GPU and many GPUs under torchrun, and any model: a
[`SliceSequenceClassifier`][slicevid.SliceSequenceClassifier] or a plain ``nn.Module`` (see `.network`). Each
epoch trains, validates, keeps the best weights by ``config.monitor`` and checkpoints; every
other policy (the learning-rate plateau, early stopping, the time budget, TensorBoard, the
temperature and the decision thresholds) is a callback (`slicevid.train.callbacks`). Each
epoch reseeds from ``config.seed + epoch`` (shuffling, augmentation, dropout), and the last
checkpoint holds the model, the kept weights, the optimizer, the `TrainState` and the
settings that made them, so a resumed run reaches the same weights as an uninterrupted one,
and a resume with other settings is refused.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .._io import atomic_write_text
from .._progress import progress_bar
from ..augment import make_augmentation
from ..devices import autocast, autocast_dtype_for, resolve_device
from ..errors import ConfigError, DataError, RunFolderError, TrainingDivergedError
from ..model import SliceSequenceClassifier
from ..model_config import ModelConfig, Provenance
from ..pretrained import write_pretrained
from ..tasks import Task
from .callbacks import Callback, default_callbacks
from .checkpoint import LAST_CHECKPOINT, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .datasets import data_spec, dataset_targets, input_spec
from .distributed import all_ranks_agree, broadcast_buffers, gather_tensors, setup_distributed
from .evaluation import Evaluation, make_evaluation, predict_outputs
from .features import HeadOnly, extract_features
from .loaders import collate_for, training_loader
from .network import ModelOutputs, describe_model, named_tasks
from .objective import Objective, batch_targets
from .optim import make_optimizer
from .precise_bn import recompute_batchnorm
from .reporting import RunReport, epoch_line, monitored_metrics, write_history_csv
from .resume import resume_differences
from .run_folder import RunFolder, open_run_folder
from .state import FitResult, TrainState

DIVERGENCE_FACTOR = 1e3
"""A batch loss this many times the run's first one means training diverged."""


class Trainer:
    """State of one ``fit`` call; its methods are the steps of the loop (what callbacks see).

    ``model`` is the user's model; ``network`` is the module the forward and backward passes
    call (``model`` returning a dict of outputs, or its heads alone on cached features,
    possibly wrapped by DDP or ``torch.compile``); ``description`` is the trained model's
    [`ModelConfig`][slicevid.ModelConfig], set on a slicevid model once, when training ends;
    ``tasks`` its heads; ``state`` the `TrainState`; ``last_outputs`` the logits and targets of
    the latest validation.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: Dataset,
        val_data: Dataset | None,
        config: TrainConfig,
        class_names: Sequence[str] | None,
        folder: RunFolder | None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.model, self.config, self.folder = model, config, folder
        self.out_dir = folder.path if folder is not None else None
        self.device = resolve_device(config.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.context = setup_distributed(self.device)
        self.writes = folder is not None
        self.verbose = config.progress and self.context.is_main
        self.description = self._describe(train_data, val_data, class_names)
        self.tasks: dict[str, Task] = dict(self.description.tasks)
        self.monitored = monitored_metrics(self.tasks)
        if config.monitor not in self.monitored:
            valid = ", ".join(sorted(self.monitored))
            raise ConfigError("monitor", f"{config.monitor!r} is not a validation value of this model; one of {valid}")
        if config.calibrate == "temperature" and not any(t.kind == "multiclass" for t in self.tasks.values()):
            raise ConfigError("calibrate", "'temperature' scales a multi-class head's softmax; this model has none")
        self.autocast_dtype = autocast_dtype_for(config.amp, self.device)
        self.augmentation = make_augmentation(config.augment)
        model.to(self.device)
        self.raw_train_data = train_data  # before any feature caching: for the montage
        self.network: nn.Module = ModelOutputs(model)
        if config.feature_cache:
            train_data, val_data = self._cache_features(train_data, val_data)
        self.train_data, self.val_data = train_data, val_data
        balances = self._balances(train_data) if config.class_weights else {}
        self.objective = Objective(self.tasks, balances, config.class_weight_mode, self.description.slice_supervision)
        self.optimizer = make_optimizer(config, [p for p in model.parameters() if p.requires_grad])
        if self.context.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.network = nn.parallel.DistributedDataParallel(self.network, device_ids=ids)
        if config.compile:
            self.network = torch.compile(self.network)
        self.state = TrainState()
        self.best_weights = self._snapshot()
        self.user_callbacks = list(callbacks)
        self.callbacks: list[Callback] = []
        self.last_outputs: tuple[dict, dict] | None = None

    def _describe(self, train_data: Dataset, val_data: Dataset | None, class_names) -> ModelConfig:
        """The trained model's config: its heads named after the data's classes, its input and data described."""
        config = describe_model(self.model, train_data, class_names)
        return config.replace(
            heads=replace(config.heads, tasks=named_tasks(config.tasks, train_data, class_names)),
            inputs=replace(config.inputs, **input_spec(train_data)),
            provenance=Provenance(data_spec(train_data, val_data)),
        )

    def _cache_features(self, train_data, val_data):
        if not isinstance(self.model, SliceSequenceClassifier):
            raise ConfigError("feature_cache", "needs a slicevid model (its encoder's features are cached)")
        if self.config.augment != "none":
            raise ConfigError("feature_cache", "needs augment='none': augmented inputs change the features every epoch")
        if not self.model.features_frozen:
            raise ConfigError(
                "feature_cache",
                "is exact only while the adapter and encoder are frozen, as in video pretraining "
                "(slicevid pretrain --feature-cache; in Python pretrain(..., TrainConfig(feature_cache=True)))",
            )
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

    def _balances(self, train_data: Dataset) -> dict[str, torch.Tensor | None]:
        targets = dataset_targets(train_data, list(self.tasks))
        return {name: self._to_device(task.balance(targets[name])) for name, task in self.tasks.items()}

    def _to_device(self, tensor: torch.Tensor | None) -> torch.Tensor | None:
        return tensor.to(self.device) if tensor is not None else None

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
            drop_last=self.config.drop_last,
        )

    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / LAST_CHECKPOINT if self.out_dir else None

    # ------------------------------------------------------------------ resume
    def maybe_resume(self) -> None:
        """Continue from the run folder's checkpoint, refusing any setting that differs from it."""
        if not (self.config.resume and self.writes):
            return
        saved = load_checkpoint(self.checkpoint_path)
        differences = resume_differences(
            saved["model_config"], saved["train_config"], self.description, self.config.to_dict()
        )
        if differences:
            raise RunFolderError(
                f"--resume: {self.checkpoint_path} was trained with other settings ({'; '.join(differences)}; "
                "saved vs now); use the saved settings, or --overwrite to start again"
            )
        self.model.load_state_dict(saved["model"])
        self.best_weights = saved["best"]
        self.optimizer.load_state_dict(saved["optimizer"])
        self.state = saved["state"]
        if self.verbose:
            print(f"Resuming {self.checkpoint_path} after epoch {self.state.epoch}")

    def start_callbacks(self) -> None:
        """The policies the settings ask for, then the user's (after a resume, so they read its state)."""
        self.callbacks = [*default_callbacks(self), *self.user_callbacks]

    # ------------------------------------------------------------------ one epoch
    def train_epoch(self, epoch: int, started: float | None = None) -> float:
        """Train one epoch; returns its mean loss. ``started`` (the run's start) asks for the time to
        the first batch to be printed."""
        torch.manual_seed(self.config.seed + epoch)  # dropout and any model randomness
        augment_rng = torch.Generator().manual_seed(10_007 * (self.config.seed + 1) + epoch)
        loader = self._loader(self.train_data, epoch)
        self.network.train()
        self.optimizer.zero_grad(set_to_none=True)
        total, count = torch.zeros(1, dtype=torch.float64), 0
        bar = progress_bar(
            loader, enabled=self.verbose, desc=f"epoch {epoch + 1}/{self.config.epochs}", unit="batch", leave=False
        )
        for step, (inputs, targets, lengths) in enumerate(bar):
            inputs = inputs.to(self.device, non_blocking=True)
            targets = batch_targets(targets, self.tasks, self.device)
            lengths = lengths.to(self.device) if lengths is not None else None
            if self.augmentation is not None:
                inputs = self.augmentation(inputs, generator=augment_rng, lengths=lengths)
            with autocast(self.device, self.autocast_dtype):
                outputs = self._forward(inputs, lengths)
            loss = self.objective(outputs, targets, lengths)
            self._check_loss(loss, epoch, step)
            (loss / self.config.grad_accum).backward()
            if (step + 1) % self.config.grad_accum == 0 or step + 1 == len(loader):
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            total += loss.detach().double().cpu() * len(inputs)
            count += len(inputs)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if started is not None and step == 0 and self.context.is_main:
                print(f"first training batch done {time.perf_counter() - started:.1f}s after the start", flush=True)
        broadcast_buffers(self.context, self.model)
        sums = gather_tensors(self.context, torch.cat([total, torch.tensor([float(count)], dtype=torch.float64)]))[0]
        sums = sums.view(-1, 2).sum(0)
        if not sums[1]:
            raise DataError(
                f"epoch {epoch + 1} had no training batch: {len(self.train_data)} samples in batches of "
                f"{self.config.batch_size}{' with drop_last' if self.config.drop_last else ''}; use more samples "
                "or smaller batches"
            )
        return float(sums[0] / sums[1])

    def _forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None) -> dict[str, torch.Tensor]:
        try:
            return self.network(inputs, lengths)
        except ValueError as err:
            if len(inputs) == 1 and "more than 1 value per channel" in str(err):
                raise ConfigError(
                    "batch_size",
                    f"left a training batch of one scan, on which the model's BatchNorm cannot train "
                    f"({len(self.train_data)} samples in batches of {self.config.batch_size}); "
                    "set drop_last (--drop-last) or another batch size",
                ) from err
            raise

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
        outputs, targets, slice_loss = predict_outputs(
            self.network,
            self.val_data,
            self.objective,
            batch_size=self.config.batch_size,
            device=self.device,
            autocast_dtype=self.autocast_dtype,
            context=self.context,
            num_workers=self.config.num_workers,
            collate=collate_for(self.val_data),
        )
        self.last_outputs = (outputs, targets)
        evaluation = make_evaluation(outputs, targets, self.tasks, slice_loss)
        if epoch is not None and not math.isfinite(evaluation.loss):
            raise TrainingDivergedError(
                f"Validation loss became {evaluation.loss} after epoch {epoch + 1}: the "
                "validation data hold NaN or infinite values (or no targets), or the model produces them"
            )
        return evaluation

    # ------------------------------------------------------------------ end of an epoch
    def record(self, epoch: int, train_loss: float, started: float) -> dict:
        """The epoch's history row (validating first, when there is validation data)."""
        row = {"epoch": epoch + 1, "train_loss": train_loss, "lr": self.optimizer.param_groups[0]["lr"]}
        if self.val_data is not None:
            self.recompute_batchnorm(epoch)
            row.update({f"val_{k}": v for k, v in self.validate(epoch).metrics().items()})
        row["seconds"] = round(time.perf_counter() - started, 3)
        self.state.history.append(row)
        self.state.epoch = epoch + 1
        if self.context.is_main:
            print(epoch_line(row, self.config.epochs, self.tasks), flush=True)
        return row

    def update_best(self, row: dict) -> None:
        """Keep the weights of the best monitored value (the last epoch's without validation data)."""
        loss = row.get("val_loss")
        score = row.get(self.config.monitor)
        if score is None or self._improves(score):
            self.state.best_epoch, self.state.bad_epochs = row["epoch"], 0
            self.state.best_val_loss = math.inf if loss is None else loss
            self.state.best_score = score
            self.best_weights = self._snapshot()
            if self.writes:
                self._save_best()
        else:
            self.state.bad_epochs += 1

    def _improves(self, score: float) -> bool:
        best = self.state.best_score
        if not math.isfinite(score):
            return best is None
        if best is None or not math.isfinite(best):
            return True
        return score > best if self.monitored[self.config.monitor] else score < best

    def end_epoch(self, row: dict) -> None:
        """Ask every callback after the epoch (the plateau, early stopping, budgets, logs)."""
        for callback in self.callbacks:
            callback.on_epoch_end(self, row)

    def save(self) -> None:
        if not self.writes:
            return
        save_checkpoint(
            self.checkpoint_path,
            model=self.model,
            best_state=self.best_weights,
            optimizer=self.optimizer,
            state=self.state,
            model_config=self.description,
            train_config=self.config.to_dict(),
        )
        write_history_csv(self.out_dir / "metrics.csv", self.state.history)
        self.folder.commit()  # this run now exists: a run it replaced can go

    def _save_best(self) -> None:
        """``best/``: the model with its description, or the slicevid model a training wrapper names as
        ``pretrained_model``."""
        inner = getattr(self.model, "pretrained_model", None)
        if isinstance(inner, SliceSequenceClassifier):
            write_pretrained(self.out_dir / "best", inner.config, inner.state_dict())
            return
        write_pretrained(self.out_dir / "best", self.description, self.model.state_dict())

    def update_tasks(self, changed: Mapping[str, Task]) -> Evaluation:
        """Replace some heads' tasks (a fitted temperature, chosen thresholds) and validate again."""
        self.tasks.update(changed)
        self.objective.tasks.update(changed)
        self.description = self.description.with_tasks(self.tasks)
        return self.validate()

    # ------------------------------------------------------------------ the end
    def finish(self) -> FitResult:
        self.model.load_state_dict(self.best_weights)  # restore the kept weights, as Keras' EarlyStopping
        evaluation = self.validate() if self.val_data is not None else None
        for callback in self.callbacks:
            evaluation = callback.on_fit_end(self, evaluation)
        if isinstance(getattr(self.model, "config", self.description), ModelConfig):
            self.model.config = self.description  # the one place fit describes the model (a plain one too)
        if self.writes:
            self._save_best()
        for callback in self.callbacks:
            callback.on_run_end(self, evaluation)
        return FitResult.from_state(self.state, evaluation, self.out_dir, self.description)


def fit(
    model: nn.Module,
    train_data: Dataset,
    val_data: Dataset | None = None,
    config: TrainConfig | None = None,
    *,
    class_names: Sequence[str] | None = None,
    record: Mapping[str, Any] | None = None,
    callbacks: Sequence[Callback] = (),
) -> FitResult:
    """Train a model on ``train_data``, validating on ``val_data`` after each epoch.

    The learning rate drops by ``plateau_factor`` when the validation loss stalls, training
    stops after ``early_stopping_patience`` epochs without improvement of ``config.monitor``
    (or when ``time_limit`` has passed), and the model ends with the weights of its best epoch.
    A two-class head then gets its decision threshold chosen on the validation data (Youden's
    index by default), multi-label heads per-label thresholds, and with ``calibrate`` multi-class
    heads a softmax temperature. A slicevid model's config receives, once, at the end, the class
    names, thresholds, input description and data provenance of ``train_data``.

    Args:
        model: a [`SliceSequenceClassifier`][slicevid.SliceSequenceClassifier], or any ``nn.Module`` mapping
            ``(B, C, D, H, W)`` volumes to logits (one classification head; several if it
            returns a dict and carries a ``config`` describing its tasks).
        train_data: ``(volume, target)`` samples.
        val_data: validation samples, which choose the kept epoch; ``None`` keeps the last epoch.
        config: the training settings (the paper's recipe by default).
        class_names: names of a one-head classifier's classes (default: the data's ``classes``).
        record: the settings to save as the run folder's ``config.yaml`` (the command line saves
            its every option, so ``--config run/config.yaml`` reruns the run); the training
            settings by default.
        callbacks: more `Callback` objects, asked after the built-in ones at each point of the loop.

    Returns:
        The `FitResult`: history, kept epoch, its validation evaluation,
        and the trained model's description. With ``config.out_dir`` the run folder receives
        ``last.safetensors`` (resumable), ``best/`` (``save_pretrained`` format), ``metrics.csv``,
        ``config.yaml``, ``report.json``, ``curves.png``, ``confusion.png``, ``montage.png`` and,
        for classifiers, ``roc.png`` and ``reliability.png``.

    Raises:
        TrainingDivergedError: the loss became NaN, infinite or exploded; the last good checkpoint stays.
        RunFolderError: ``out_dir`` holds another run (without ``resume`` / ``overwrite``), is in
            use, holds no run to resume, or was trained with other settings than a resume gives.
        DataError: empty data, or targets that do not fit the model's heads.
        ConfigError: settings that cannot work together, or a ``monitor`` the model does not
            report (named in the message, before the first epoch).
    """
    started = time.perf_counter()
    config = config or TrainConfig()
    if len(train_data) == 0:
        raise DataError("Cannot train on an empty dataset (no samples in the training split)")
    main_process = setup_distributed(resolve_device(config.device)).is_main
    folder = (
        open_run_folder(config.out_dir, resume=config.resume, overwrite=config.overwrite)
        if config.out_dir and main_process
        else contextlib.nullcontext(None)
    )
    with folder as run_folder:
        trainer = Trainer(model, train_data, val_data, config, class_names, run_folder, callbacks)
        trainer.maybe_resume()
        trainer.start_callbacks()
        if trainer.writes:  # the record of the run, once every check has passed
            _write_record(run_folder.path / "config.yaml", record or config.to_dict())
            trainer.callbacks.append(RunReport(trainer.raw_train_data))
        for epoch in range(trainer.state.epoch, config.epochs):
            if trainer.state.stopped:
                break
            epoch_started = time.perf_counter()
            row = trainer.record(epoch, trainer.train_epoch(epoch, started if epoch == 0 else None), epoch_started)
            trainer.update_best(row)
            trainer.end_epoch(row)
            trainer.save()
        return trainer.finish()


def _write_record(path: Path, values: Mapping[str, Any]) -> None:
    import yaml

    atomic_write_text(path, yaml.safe_dump(dict(values), sort_keys=False))
