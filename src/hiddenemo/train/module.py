"""The Lightning adapter: one LightningModule for both stages, and the per-epoch checkpoint that
makes a killed fit resume where it stopped.

The module wraps any model that maps a batch dict to logits (B,) — or (B, C) for a task of more than
two classes, trained with the softmax focal loss on (B, C) targets: a stage-1 single-modality
classifier or the stage-2 fusion model. Validation averages the probabilities of each video's
voting draws, so `val_probs` holds one probability (or one row of C) per validation video after
every epoch.

Resume is exact: dropout is seeded from (seed, epoch, batch), the shuffle from (seed, epoch), each
video's sampling from (seed, video, draw), and the per-epoch checkpoint keeps the weights
(safetensors) and the optimizer state (`torch.save` of tensors only, read back with `weights_only=True`).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from safetensors.torch import save_file

from hiddenemo.data.store import atomic_write_text
from hiddenemo.eval.metrics import binary_metrics, multiclass_metrics
from hiddenemo.models.fusion import logits_out
from hiddenemo.models.losses import focal_loss, softmax_focal_loss, supervised_contrastive_loss
from hiddenemo.train.config import StageConfig
from hiddenemo.train.distributed import gather_validation, mean_across_ranks
from hiddenemo.train.state import epoch_seed, read_state

log = logging.getLogger(__name__)


class ClassifierModule(L.LightningModule):
    """Focal loss with soft targets and per-sample weights; AdamW at a constant learning rate."""

    def __init__(self, model: torch.nn.Module, stage: StageConfig, *, seed: int, tag: str, epoch_offset: int = 0,
                 optimizer_state: dict | None = None):
        super().__init__()
        self.model, self.stage, self.seed, self.tag = model, stage, seed, tag
        self.epoch_offset, self.optimizer_state = epoch_offset, optimizer_state
        self.val_probs: np.ndarray | None = None
        self.val_loss = float("nan")
        self._val_out: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._train_losses: list[tuple[torch.Tensor, int]] = []     # (loss, batch size) of each step

    @property
    def epoch(self) -> int:
        """The epoch being trained, counted across resumes (0-based)."""
        return self.epoch_offset + self.current_epoch

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(batch)                                          # (B,) logits

    def _loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if logits.ndim == 2:                                              # (B, C): more than two classes
            return softmax_focal_loss(logits, batch["target"].float(), gamma=self.stage.focal_gamma,
                                      weight=batch["weight"].float())
        return focal_loss(logits, batch["target"].float(), alpha=self.stage.focal_alpha,
                          gamma=self.stage.focal_gamma, weight=batch["weight"].float())

    def on_fit_start(self) -> None:
        if self.optimizer_state is not None:                              # resuming a killed fit
            self.trainer.optimizers[0].load_state_dict(self.optimizer_state)

    def on_train_epoch_start(self) -> None:
        loader = self.trainer.train_dataloader
        loader.dataset.set_epoch(self.epoch)
        loader.sampler.set_epoch(self.epoch)
        self._train_losses = []

    def on_train_batch_start(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        # Dropout's randomness from (seed, epoch, batch): Lightning and the DataLoader draw from the
        # global generator differently in the first epoch of a fit, so seeding per epoch is not enough.
        seed = epoch_seed(self.seed, self.tag, self.epoch * 1_000_003 + batch_idx)
        if self.device.type == "cpu":   # the same generator torch.manual_seed seeds, without its accelerator
            torch.default_generator.manual_seed(seed)       # calls (a millisecond a batch)
        else:
            torch.manual_seed(seed)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.stage.contrastive_weight > 0:
            # The paper's "contrastive" row: a small supervised contrastive term on the features.
            features = self.model.forward_features(batch)                 # (B, dim)
            loss = self._loss(logits_out(self.model.head(features)), batch) + self.stage.contrastive_weight * \
                supervised_contrastive_loss(features, batch["target"].float(), weight=batch["weight"].float())
        else:
            loss = self._loss(self(batch), batch)
        self._train_losses.append((loss.detach(), len(batch["target"])))
        return loss

    def on_train_epoch_end(self) -> None:
        # The epoch's train_loss for the loggers and the bar, once: `self.log` at every step costs about
        # a millisecond, a tenth of a small model's step. Summed as Lightning's epoch mean sums it.
        total = torch.tensor(0.0)
        for loss, size in self._train_losses:
            total = total + loss * size
        self.log("train_loss", total / sum(size for _, size in self._train_losses), prog_bar=True)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch)
        probs = torch.softmax(logits, -1) if logits.ndim == 2 else torch.sigmoid(logits)
        self._val_out.append((batch["index"], probs.detach(), self._loss(logits, batch).detach()))

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self._val_out = []
            return
        index, probs, losses = gather_validation(self._val_out)       # every rank's videos (DDP)
        self._val_out = []
        if not len(index):
            return
        self.val_loss = float(np.mean(losses))
        n = int(index.max()) + 1
        # Voting: the mean probability of each video's draws.
        self.val_probs = mean_by_index(index, probs, n)
        m = validation_metrics(self.trainer.val_dataloaders.dataset.targets[:n], self.val_probs)
        self.log_dict({"val_loss": self.val_loss, "val_acc": m["accuracy"], "val_auroc": m["auroc"]}, prog_bar=True)

    def configure_optimizers(self):
        # foreach: one kernel per step for all the parameters, not a Python loop over them (torch's
        # default on the CPU); the same updates, a fraction of the overhead of a small model's step.
        return torch.optim.AdamW(self.parameters(), lr=self.stage.lr, weight_decay=self.stage.weight_decay,
                                 foreach=True)

    def train_loss_mean(self) -> float:
        return float(np.mean([float(loss) for loss, _ in self._train_losses])) if self._train_losses else float("nan")


def mean_by_index(index: np.ndarray, probs: np.ndarray, n: int) -> np.ndarray:
    """The mean of the rows of `probs` ((N,) or (N, C)) that share an index: (n,) or (n, C)."""
    counts = np.bincount(index, minlength=n)
    if probs.ndim == 1:
        return np.bincount(index, probs, minlength=n) / counts
    sums = np.zeros((n, probs.shape[1]))
    np.add.at(sums, index, probs)
    return sums / counts[:, None]


def validation_metrics(targets: np.ndarray, probs: np.ndarray) -> dict:
    """Accuracy and AUROC of validation probabilities against targets (two classes: rounded; more: arg-max)."""
    if probs.ndim == 2:
        return multiclass_metrics(np.asarray(targets).argmax(1), probs)
    return binary_metrics((targets >= 0.5).astype(int), probs)


class EpochCheckpoint(L.Callback):
    """After every epoch: weights `epoch-<e>.safetensors`, optimizer `optimizer-<e>.pt`, then `state.json`
    (written last, atomically: it names the epoch whose files are complete). `record` also serves
    epoch 0, the starting weights."""

    def __init__(self, directory: Path, keep_every_epoch: bool):
        self.directory, self.keep_every_epoch = Path(directory), keep_every_epoch
        self.state = read_state(self.directory)
        self.last_line = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, module: ClassifierModule) -> None:
        epoch = module.epoch + 1                                          # epochs done, 1-based
        row = self.record(trainer, module, epoch, mean_across_ranks(module.train_loss_mean()))
        if not trainer.is_global_zero:
            return
        # Where there is no progress bar (stderr not a terminal: logs, CI), a line for the last epoch of
        # a fit and for any epoch 30 s after the previous line: enough to follow, not a flood.
        last = trainer.current_epoch + 1 >= trainer.max_epochs
        quiet = trainer.progress_bar_callback or not (last or time.monotonic() - self.last_line >= 30)
        log.log(logging.DEBUG if quiet else logging.INFO, "%s epoch %d: train loss %.4f, val loss %.4f%s",
                module.tag, epoch, row["train_loss"], row["val_loss"],
                f", val AUROC {row['val_auroc']:.3f}" if "val_auroc" in row else "")
        self.last_line = time.monotonic() if not quiet else self.last_line
        # One optimizer file per epoch: a kill between it and state.json must not pair epoch e-1's
        # weights with epoch e's optimizer moments on resume.
        optim_tmp = self.directory / f"optimizer-{epoch}.pt.tmp"
        torch.save(trainer.optimizers[0].state_dict(), optim_tmp)
        optim_tmp.replace(self.directory / f"optimizer-{epoch}.pt")
        atomic_write_text(self.directory / "state.json", json.dumps(self.state))
        (self.directory / f"optimizer-{epoch - 1}.pt").unlink(missing_ok=True)
        if not self.keep_every_epoch and epoch > 1:
            (self.directory / f"epoch-{epoch - 1}.safetensors").unlink(missing_ok=True)

    def record(self, trainer: L.Trainer, module: ClassifierModule, epoch: int, train_loss: float) -> dict:
        """The history row of `epoch` (its validation when there was one) and its weights; `state.json`
        is written by the caller after any other file of the epoch. Epoch 0 (the starting weights,
        `StageConfig.epoch_zero`) is complete with this alone."""
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": module.val_loss}
        if module.val_probs is not None:
            m = validation_metrics(trainer.val_dataloaders.dataset.targets, module.val_probs)
            row.update(val_acc=m["accuracy"], val_auroc=m["auroc"], val_probs=module.val_probs.tolist())
        self.state["history"].append(row)
        self.state["epochs_done"] = epoch
        if trainer.is_global_zero:   # one writer: after DDP's all-reduce every rank holds the same weights
            save_weights(module.model, self.directory / f"epoch-{epoch}.safetensors")
            if epoch == 0:
                atomic_write_text(self.directory / "state.json", json.dumps(self.state))
        return row


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """Weights as safetensors, written atomically (no pickle anywhere in a checkpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(path)


def load_optimizer_state(path: Path) -> dict:
    return torch.load(path, weights_only=True)
