"""The two training stages, with cross-validation on the labeled training videos.

Stage 1, per modality: k fold fits (train on k-1 folds, validate on the held-out fold after every
epoch), the number of epochs and the threshold (more than two classes: the arg-max rule) chosen on
the pooled out-of-fold predictions. The
model that predicts is the ensemble of the k fold models at that epoch (default), or with
`selection.final_model: retrain` one more fit on all labeled videos. Stage 2: the fusion model, its
encoders loaded from stage 1, fine-tuned at a small learning rate on labeled + pseudo-labeled
videos — in fold k from the fold-k stage-1 encoders (so no held-out video was ever trained on), for
a retrained final model from the final ones.

These functions receive only the labeled training rows (`labeled`: video_id, label, subject_id)
and pseudo-labeled rows (`pseudo`: video_id, target, weight); they never see the manifest.

Every fit lives in its own directory with a `done.json` marker; a killed run resumes from the last
finished epoch of the fit it was in (`module.EpochCheckpoint`).
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import signal
import sys
import warnings
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from hiddenemo.data.pooled import PooledFeatures
from hiddenemo.data.store import Store, atomic_write_text
from hiddenemo.eval.metrics import binary_metrics, multiclass_metrics
from hiddenemo.train.config import StageConfig, TrainConfig
from hiddenemo.models.registry import reads_pooled
from hiddenemo.train.build import build_model, candidate_encoders, encoder_name, load_encoders, load_weights
from hiddenemo.errors import UserError
from hiddenemo.processes import Terminated
from hiddenemo.train.data import VideoDataset, collate, input_dims, target_columns, target_rows
from hiddenemo.train.distributed import DistributedEpochShuffle, VotingEvalSampler
from hiddenemo.train.state import epoch_seed, read_state
from hiddenemo.train.selection import choose_decision, choose_epoch, choose_threshold
from hiddenemo.train.workers import FitWorkers

log = logging.getLogger(__name__)
METRIC_COLUMNS = ["epoch", "fold", "train_loss", "val_loss", "val_acc", "val_auroc"]


@dataclass
class Context:
    """What every fit of a run shares."""
    work: Path
    run_dir: Path
    config: TrainConfig
    dims: dict[str, int]
    class_weights: dict[int, float] | None = None
    pooled: dict[str, PooledFeatures] = field(default_factory=dict)
    n_classes: int = 2
    """Classes of the task: two = one logit (sigmoid), more = one logit per class (softmax)."""
    workers: FitWorkers | None = field(default=None, repr=False)
    """Where `fit_all` trains a batch of fits at once; None = one after the other in this process."""

    def dataset(self, modalities: list[str], rows: pd.DataFrame, *, train: bool, resamples: int = 1) -> VideoDataset:
        """The videos of `rows` as this run's models read them."""
        cfg = self.config
        pooled = {m: self.pooled[m] for m in modalities if reads_pooled(encoder_name(cfg.model, m))}
        return VideoDataset(self.work, rows, modalities, cfg.sampling, train=train, seed=cfg.seed, dims=self.dims,
                            text_encoder=cfg.model.text_encoder, resamples=resamples, pooled=pooled,
                            train_window=cfg.pooled.train_window,
                            encoders={m: encoder_name(cfg.model, m) for m in modalities})

    def with_encoders(self, encoders: dict[str, str], dims: dict[str, int]) -> "Context":
        """The same run with these encoders (and their input widths) for some modalities."""
        model = replace(self.config.model, encoders={**self.config.model.encoders, **encoders})
        return replace(self, config=replace(self.config, model=model), dims={**self.dims, **dims})


@dataclass
class Fit:
    """One model to train, in its own directory `out`: what `fit` needs, so that a stage can hand all
    its independent fits to `fit_all` at once."""
    ctx: Context
    modalities: list[str]
    stage: StageConfig
    train_rows: pd.DataFrame
    val_rows: pd.DataFrame | None
    out: Path
    epochs: int
    fused: bool
    keep_every_epoch: bool
    init: Callable | None = None
    """Loads weights into the new model before training (stage 2: the stage-1 encoders); picklable,
    for a worker process."""

    @property
    def tag(self) -> str:
        return str(self.out.relative_to(self.ctx.run_dir))


def fit_all(ctx: Context, fits: list[Fit]) -> list[dict]:
    """Train fits that do not depend on each other; returns their states in order. Two or more still
    to train go to the run's worker processes when it has them, the rest train here."""
    todo = [f for f in fits if not (f.out / "done.json").exists()]
    if ctx.workers is None or len(todo) < 2:
        return [fit(f) for f in fits]
    stage = todo[0].tag.split("/")[0]
    # A worker gets the fit without the pool (which stays in this process).
    trained = ctx.workers.map(fit, [(replace(f, ctx=replace(f.ctx, workers=None)),) for f in todo],
                              [f.tag for f in todo], f"{stage}: {len(todo)} fits")
    by_dir = dict(zip((f.out for f in todo), trained))
    return [by_dir[f.out] if f.out in by_dir else read_state(f.out) for f in fits]


def fit(job: Fit) -> dict:
    """Train one model for `job.epochs` epochs in `job.out` (resuming if it was interrupted); returns its
    state (per-epoch history with validation probabilities)."""
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from hiddenemo.train.module import ClassifierModule, EpochCheckpoint, load_optimizer_state, save_weights

    _quiet_lightning()

    ctx, out, epochs, stage, modalities = job.ctx, job.out, job.epochs, job.stage, job.modalities
    out.mkdir(parents=True, exist_ok=True)
    if (out / "done.json").exists():
        return read_state(out)
    cfg, tag = ctx.config, job.tag
    L.seed_everything(epoch_seed(cfg.seed, tag, -1), workers=True, verbose=False)
    model = build_model(cfg.model, modalities, ctx.dims, fused=job.fused, dropout=stage.dropout,
                        n_classes=ctx.n_classes)
    if job.init is not None:
        job.init(model)
    state = read_state(out)
    done, optimizer_state = state["epochs_done"], None
    if done:
        log.info("%s: resuming after epoch %d of %d", tag, done, epochs)
        load_weights(model, out / f"epoch-{done}.safetensors")
        optimizer_state = load_optimizer_state(out / f"optimizer-{done}.pt")
    if epochs == 0:                    # cross-validation chose the starting weights (`StageConfig.epoch_zero`)
        save_weights(model, out / "epoch-0.safetensors")
    # What the fit's Trainers share (the one that trains, and the one validating epoch 0).
    shared = dict(accelerator=cfg.trainer.accelerator, devices=cfg.trainer.devices, num_nodes=cfg.trainer.num_nodes,
                  strategy=cfg.trainer.strategy, use_distributed_sampler=False,   # ours shard (train.distributed)
                  num_sanity_val_steps=0, enable_model_summary=False)
    if done < epochs:
        module = ClassifierModule(model, stage, seed=cfg.seed, tag=tag, epoch_offset=done,
                                  optimizer_state=optimizer_state)
        weights = ctx.class_weights if stage.class_balanced else None
        train_ds = ctx.dataset(modalities, _weighted(job.train_rows, weights), train=True, resamples=stage.resamples)
        train_loader = DataLoader(train_ds, batch_size=stage.batch_size, collate_fn=collate,
                                  sampler=DistributedEpochShuffle(len(train_ds), epoch_seed(cfg.seed, tag, -2)))
        val_loader = None
        if job.val_rows is not None:
            val_ds = ctx.dataset(modalities, job.val_rows, train=False)
            val_loader = DataLoader(val_ds, batch_size=stage.batch_size, collate_fn=collate,
                                    sampler=VotingEvalSampler(len(val_ds.video_ids), val_ds.draws))
        if stage.epoch_zero and val_loader is not None and not state["history"]:
            # Epoch 0: the starting weights validated and saved like a trained epoch's. Nothing random
            # is drawn, so the epochs after it train exactly as they would without it.
            start = L.Trainer(**shared, logger=False, enable_checkpointing=False, enable_progress_bar=False)
            start.validate(module, val_loader, verbose=False)
            EpochCheckpoint(out, job.keep_every_epoch).record(start, module, epoch=0, train_loss=float("nan"))
        logs = ctx.run_dir / "logs"
        trainer = L.Trainer(
            **shared, max_epochs=epochs - done, logger=[
                CSVLogger(logs, name=tag), TensorBoardLogger(logs, name=tag, default_hp_metric=False)],
            callbacks=[EpochCheckpoint(out, job.keep_every_epoch)], enable_checkpointing=False, log_every_n_steps=1,
            # A redrawn bar floods a log file, and a worker's would overwrite its siblings' on the terminal.
            enable_progress_bar=sys.stderr.isatty() and multiprocessing.parent_process() is None,
            limit_val_batches=1.0 if val_loader is not None else 0)
        try:
            trainer.fit(module, train_loader, val_loader)
        except SystemExit:
            if not trainer.interrupted:
                raise
            # Lightning answers Ctrl-C (and our SIGTERM's `Terminated`) with sys.exit(1) and ignores
            # SIGINT from then on: hand the CLI what every other stage gives it ("interrupted; ...
            # resume", exit 130; "terminated", exit 143).
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise (Terminated() if trainer.received_sigterm else KeyboardInterrupt()) from None
        trainer.strategy.barrier("checkpoint")                          # rank 0 has written state.json
        state = read_state(out)
        if state["epochs_done"] < epochs:
            raise RuntimeError(f"{tag}: training stopped after epoch {state['epochs_done']} of {epochs}")
    atomic_write_text(out / "done.json", json.dumps({"epochs": epochs}))
    for optimizer in out.glob("optimizer-*.pt"):                        # only needed to resume
        optimizer.unlink(missing_ok=True)
    return state


def cross_validate(ctx: Context, modalities: list[str], stage: StageConfig, labeled: pd.DataFrame,
                   folds: np.ndarray, extra, out: Path, *, fused: bool, init_for_fold=None) -> dict:
    """k fold fits, then epochs and threshold from the pooled out-of-fold predictions. `extra`: rows
    (video_id, target, weight) added to every fold's training, or a function fold -> such rows.

    Returns the selection: {epochs, threshold, oof (n,) or (n, C), metrics}; with more than two classes
    `threshold` holds the decision rule (`choose_decision`) instead."""
    fits = fold_fits(ctx, modalities, stage, labeled, folds, extra, out, fused=fused, init_for_fold=init_for_fold)
    return select(ctx, stage, labeled, folds, out, fit_all(ctx, fits))


def fold_fits(ctx: Context, modalities: list[str], stage: StageConfig, labeled: pd.DataFrame, folds: np.ndarray,
              extra, out: Path, *, fused: bool, init_for_fold=None) -> list[Fit]:
    """The k fold fits of `cross_validate`: fold k trains on the other folds (+ `extra`) and validates on k."""
    rows = target_rows(labeled, ctx.n_classes)
    fits = []
    for fold in range(int(folds.max()) + 1):
        train_rows = rows[folds != fold]
        added = extra(fold) if callable(extra) else extra
        if added is not None and len(added):
            train_rows = pd.concat([train_rows, added], ignore_index=True)
        fits.append(Fit(ctx, modalities, stage, train_rows, rows[folds == fold], out / f"fold{fold}", stage.epochs,
                        fused=fused, keep_every_epoch=True, init=init_for_fold(fold) if init_for_fold else None))
    return fits


def select(ctx: Context, stage: StageConfig, labeled: pd.DataFrame, folds: np.ndarray, out: Path,
           states: list[dict]) -> dict:
    """`cross_validate`'s choice from the states of its fold fits (`states[k]`: fold k's)."""
    y = labeled["label"].to_numpy()
    epoch_of_row = [row["epoch"] for row in states[0]["history"]]    # 1..E, or 0..E with `epoch_zero`
    k = len(states)
    oof = np.zeros((len(epoch_of_row), len(labeled)) + ((ctx.n_classes,) if ctx.n_classes > 2 else ()))
    losses = np.zeros((k, len(epoch_of_row)))
    history = []
    for fold, state in enumerate(states):
        for e, row in enumerate(state["history"]):
            oof[e, folds == fold] = row["val_probs"]
            losses[fold, e] = row["val_loss"]
            history.append({c: row.get(c, fold if c == "fold" else np.nan) for c in METRIC_COLUMNS})
    best = choose_epoch(oof, y, losses.mean(0), ctx.config.selection.epoch_metric) - 1
    epochs = epoch_of_row[best]
    _prune_epochs(out, k, keep=epochs)
    if ctx.n_classes > 2:
        decision = choose_decision(ctx.config.selection, np.bincount(y, minlength=ctx.n_classes) / len(y))
        cv_metrics = multiclass_metrics(y, oof[best])
    else:
        decision = choose_threshold(oof[best], y, ctx.config.selection, seed=ctx.config.seed)
        cv_metrics = binary_metrics(y, oof[best], decision["threshold"])
    return {"epochs": epochs, "threshold": decision, "oof": oof[best], "history": history,
            "epoch_metric": ctx.config.selection.epoch_metric, "cv_metrics": cv_metrics}


def run_stage1(ctx: Context, labeled: pd.DataFrame, folds: np.ndarray) -> dict[str, dict]:
    """Each modality alone on the labeled videos: CV of each candidate encoder, the one with the best
    out-of-fold AUROC kept (the configured one on ties), then its final fit. Returns selections per
    modality, each with its `encoder`, input width `dims` and directory `dir` in the run."""
    video_ids = labeled["video_id"].tolist()
    stage = ctx.config.stage1
    tries = []                                       # (modality, encoder, its context, its input width, its directory)
    for modality in ctx.config.model.modalities:
        names = candidate_encoders(ctx.config.model, modality)
        for name in names:
            dims = input_dims(Store(ctx.work), video_ids, {modality: name}, ctx.config, ctx.pooled)
            tries.append((modality, name, ctx.with_encoders({modality: name}, dims), dims[modality],
                          ctx.run_dir / "stage1" / modality / (name if len(names) > 1 else "")))
    # The folds of every modality and candidate are independent of each other: one batch for `fit_all`.
    cv = [fold_fits(sub, [modality], stage, labeled, folds, None, out, fused=False)
          for modality, _, sub, _, out in tries]
    states = iter(fit_all(ctx, [f for fits in cv for f in fits]))
    sels = [select(sub, stage, labeled, folds, out, [next(states) for _ in fits])
            for (_, _, sub, _, out), fits in zip(tries, cv)]
    if ctx.config.selection.final_model == "retrain":
        rows = target_rows(labeled, ctx.n_classes)
        fit_all(ctx, [Fit(sub, [modality], stage, rows, None, out / "final", sel["epochs"], fused=False,
                          keep_every_epoch=False) for (modality, _, sub, _, out), sel in zip(tries, sels)])
    tried: dict[str, dict] = {}
    for (modality, name, _, dim, out), sel in zip(tries, sels):
        write_metrics(out / "metrics.csv", sel["history"])
        tried.setdefault(modality, {})[name] = {**sel, "encoder": name, "dims": dim,
                                                "dir": str(out.relative_to(ctx.run_dir))}
    selections = {}
    for modality, by_name in tried.items():
        best = max(by_name, key=lambda n: np.nan_to_num(by_name[n]["cv_metrics"]["auroc"], nan=-1.0))
        if len(by_name) > 1:
            scores = {n: round(float(t["cv_metrics"]["auroc"]), 4) for n, t in by_name.items()}
            log.info("stage 1 %s: out-of-fold AUROC %s -> %s", modality, scores, best)
            by_name[best]["candidates"] = scores
        selections[modality] = by_name[best]
    return selections


def chosen(ctx: Context, stage1: dict[str, dict]) -> Context:
    """The run with the encoders stage 1 chose."""
    return ctx.with_encoders({m: s["encoder"] for m, s in stage1.items()}, {m: s["dims"] for m, s in stage1.items()})


def run_stage2(ctx: Context, labeled: pd.DataFrame, folds: np.ndarray, pseudo: pd.DataFrame,
               stage1: dict[str, dict], pseudo_in_fold: Callable[[int], pd.DataFrame] | None = None) -> dict:
    """All modalities fused, encoders from stage 1 (when it ran), on labeled + pseudo-labeled videos.
    `pseudo_in_fold`: fold -> the pseudo-labeled rows of that fold's training, its held-out videos
    among them (`pseudo.in_folds`); else every fold adds `pseudo`. With `pseudo.use: if-better` the
    folds also train without pseudo-labels (in stage2/without-pseudo), and the better of the two by
    out-of-fold AUROC is the stage-2 model. Returns the selection with `n_pseudo` (0 when the
    pseudo-labels were left out) and, then, `dir`."""
    modalities = ctx.config.model.modalities
    if ctx.config.self_training.rounds and ctx.config.selection.final_model == "retrain":
        raise UserError("self_training.rounds needs selection.final_model: fold-ensemble (each fold keeps its own "
                        "chain of pseudo-labels)")
    arms = {"stage2": pseudo_in_fold or pseudo}
    if ctx.config.pseudo.use == "if-better" and len(pseudo):
        arms["stage2/without-pseudo"] = None
    mix = starting_mix(ctx, stage1, labeled, folds)
    cv = {arm: fold_fits(ctx, modalities, ctx.config.stage2, labeled, folds, extra, ctx.run_dir / arm, fused=True,
                         init_for_fold=lambda fold: stage1_encoders(ctx, stage1, f"fold{fold}", mix.get(f"fold{fold}")))
          for arm, extra in arms.items()}
    states = iter(fit_all(ctx, [f for fits in cv.values() for f in fits]))
    sels = {arm: select(ctx, ctx.config.stage2, labeled, folds, ctx.run_dir / arm, [next(states) for _ in fits])
            for arm, fits in cv.items()}
    for arm, sel in sels.items():
        write_metrics(ctx.run_dir / arm / "metrics.csv", sel["history"])
    arm = max(sels, key=lambda a: np.nan_to_num(sels[a]["cv_metrics"]["auroc"], nan=-1.0))   # stage2 on a tie
    sel = {**sels[arm], "n_pseudo": len(pseudo) if arm == "stage2" else 0}
    if len(sels) > 1:
        sel["pseudo_labels"] = {"auroc_with": round(float(sels["stage2"]["cv_metrics"]["auroc"]), 4),
                                "auroc_without": round(float(sels["stage2/without-pseudo"]["cv_metrics"]["auroc"]), 4),
                                "kept": arm == "stage2"}
        log.info("stage 2: out-of-fold AUROC with the teacher's pseudo-labels %.3f, without %.3f -> %s",
                 sel["pseudo_labels"]["auroc_with"], sel["pseudo_labels"]["auroc_without"],
                 "with" if arm == "stage2" else "without (the teacher's labels taught the student its errors)")
    if arm != "stage2":
        sel["dir"] = arm
    if sel["epochs"] == 0:
        log.info("stage 2: no epoch of fine-tuning beat its starting weights out of fold; the student is the "
                 "stage-1 models %s", "mixed as stacked" if mix else "fused as loaded")
    if mix:
        sel["late_mix"] = {which: {m: round(w, 4) for m, w in weights.items()} for which, weights in mix.items()}
    if ctx.config.selection.final_model == "retrain":
        rows = target_rows(labeled, ctx.n_classes)
        rows = pd.concat([rows, pseudo], ignore_index=True) if sel["n_pseudo"] else rows
        fit(Fit(ctx, modalities, ctx.config.stage2, rows, None, ctx.run_dir / arm / "final", sel["epochs"], fused=True,
                keep_every_epoch=False, init=stage1_encoders(ctx, stage1, "final", mix.get("final"))))
    return sel


def starting_mix(ctx: Context, stage1: dict[str, dict], labeled: pd.DataFrame,
                 folds: np.ndarray) -> dict[str, dict[str, float]]:
    """Late fusion's starting weights per fit (fold<k>, final) with `model.late_mix: stacked`, from the
    stage-1 out-of-fold predictions (`train.stacking`); {} = the equal mix."""
    from hiddenemo.train.stacking import stacked_mix

    model = ctx.config.model
    if model.fusion != "late" or model.late_mix != "stacked" or not stage1:
        return {}
    oof, y = {m: stage1[m]["oof"] for m in model.modalities}, labeled["label"].to_numpy()
    mix = {f"fold{k}": stacked_mix(oof, y, folds != k) for k in range(int(folds.max()) + 1)}
    return {**mix, "final": stacked_mix(oof, y, np.ones(len(y), bool))}


def stage1_encoders(ctx: Context, stage1: dict[str, dict], which: str, mix: dict[str, float] | None = None):
    """A function loading the stage-1 encoders of fit `which` (fold<k> or final) into a fusion model,
    and late fusion's starting `mix` when given; None when stage 1 did not run (encoders start fresh)."""
    if not stage1:
        return None
    paths = {m: ctx.run_dir / stage1[m]["dir"] / which / f"epoch-{stage1[m]['epochs']}.safetensors"
             for m in ctx.config.model.modalities}
    return partial(load_encoders, paths=paths, mix=mix)


def _weighted(rows: pd.DataFrame, class_weights: dict[int, float] | None) -> pd.DataFrame:
    """Class-balanced sample weights (a soft target counts by its nearer class, a distribution by its arg-max)."""
    if not class_weights:
        return rows
    columns = target_columns(rows)
    cls = (pd.Series(rows[columns].to_numpy().argmax(1), index=rows.index) if columns
           else (rows["target"] >= 0.5).astype(int))
    return rows.assign(weight=rows["weight"] * cls.map(class_weights))


def _prune_epochs(out: Path, k: int, keep: int) -> None:
    """Fold fits keep every epoch's weights until the epoch is chosen; then only that one."""
    for fold in range(k):
        for path in (out / f"fold{fold}").glob("epoch-*.safetensors"):
            if path.name != f"epoch-{keep}.safetensors":
                path.unlink(missing_ok=True)             # every DDP rank prunes


def write_metrics(path: Path, history: list[dict]) -> None:
    atomic_write_text(path, pd.DataFrame(history, columns=METRIC_COLUMNS).to_csv(index=False))


def _quiet_lightning() -> None:
    # Lightning's banner lines (GPU/TPU availability, tips) repeat for every fit of a run.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
