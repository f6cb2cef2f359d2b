"""`hiddenemo ablate --study teacher-noise`: how noisy may a teacher's pseudo-labels be before stage 2
stops helping? (The paper's limitation 2.)

Only the labeled training videos are used. Each cell (seed, split) holds out a share of the subjects
as a *simulated target*: their labels are hidden from training and read only to score. On the other
subjects (the *source*) stage 1 runs once per cell (`stages.run_stage1`, its own cross-validation on
the source alone: folds, epochs and thresholds never see a target video). Then, sharing that stage 1,
stage 2 (`stages.run_stage2`) runs once per *arm*, each arm giving the target videos other
pseudo-labels:

- `none`: no pseudo-labels (stage 2 on the source only: what fusion alone brings);
- `noise-<r>`: a simulated teacher, the true label flipped for exactly round(r * n) target videos
  (uniformly, or all flips from one class: `noise_kind`), as hard labels of the base policy's weight;
- `real-...`: the real teacher's verdicts under the base pseudo-label policy (and the weights /
  confidence cut-offs asked for), calibrated on the source videos only;
- `self-training`: the base config's confidence-filtered self-training rounds after the first real arm
  (the target videos relabelled by each fold's own student), its pseudo-label noise measured on the
  kept videos of the last round.

Each arm's student (the fold ensemble at the chosen epoch) and the stage-1 models (the modality whose
source out-of-fold AUROC is best) predict the target videos; the gain is student minus stage 1 on the
same videos. Every arm's result is a JSON file written atomically (`cells/s<seed>-t<split>/<arm>/
result.json`); every fit has its done.json, so a killed study resumes where it stopped.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from hiddenemo.data.store import atomic_write_text
from hiddenemo.errors import UserError
from hiddenemo.train.config import NoiseStudy

log = logging.getLogger(__name__)
STUDY = "teacher-noise"


def simulated_teacher(y: np.ndarray, rate: float, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Hard pseudo-labels: `y` with exactly round(rate * n) labels flipped, n the number of videos
    (uniform) or of one class (class-dependent: positives = the teacher misses that share of the
    positives, negatives = it calls that share of the negatives positive; the other class is kept)."""
    y = np.asarray(y).astype(int)
    pool = {"uniform": np.arange(len(y)), "positives": np.flatnonzero(y == 1),
            "negatives": np.flatnonzero(y == 0)}[kind]
    flipped = y.copy()
    flipped[rng.choice(pool, size=int(round(rate * len(pool))), replace=False)] ^= 1
    return flipped


def holdout_splits(labeled: pd.DataFrame, splits: int, seed: int, selection) -> np.ndarray:
    """Split number of each labeled video: whole subjects per split (stratified by label)."""
    from hiddenemo.train.selection import make_folds

    return make_folds(labeled, replace(selection, folds=splits, group_by_subject=True), seed)


def run_noise_study(work: Path, seeds: int, base_config: Path | None, study: NoiseStudy) -> pd.DataFrame:
    """Every cell x arm (resuming), then WORK/ablations/teacher-noise.{md,csv,json,png}."""
    from hiddenemo.train.config import TrainConfig, from_dict
    from hiddenemo.train.workers import fit_workers

    work = Path(work)
    try:
        base = yaml.safe_load(Path(base_config).read_text()) if base_config else {}
        config = from_dict(TrainConfig, base or {})
    except (OSError, yaml.YAMLError, TypeError, ValueError) as e:
        raise UserError(f"base config {base_config}: {e}") from e
    if study.real and not config.pseudo.teacher:
        raise UserError("the real-teacher arms need pseudo.teacher in the base config (or --real false)")
    # The study scores fold ensembles (each fold's model never saw its fold).
    config = replace(config, selection=replace(config.selection, final_model="fold-ensemble"))
    _claim_study(work / "ablations" / STUDY, config)
    results = []
    with fit_workers(config) as workers:               # each stage's fits at once, as `train` trains them
        for seed in range(seeds):
            for split in range(study.splits):
                cell = work / "ablations" / STUDY / "cells" / f"s{seed}-t{split}of{study.splits}"
                print(f"\n== ablate {STUDY}: seed {seed}, simulated target = subject split {split} -> {cell}",
                      flush=True)
                results += run_cell(work, replace(config, seed=seed), split, study, cell, workers)
    per_arm = pd.DataFrame(results)
    table = summarise(per_arm)
    write_outputs(work / "ablations", per_arm, table, seeds, study, base_config, config.pseudo.teacher)
    return table


def _claim_study(out: Path, config) -> None:
    """The cells of WORK/ablations/teacher-noise belong to one base config: refuse to mix another in."""
    from hiddenemo.train.config import to_dict

    settings = json.dumps({k: v for k, v in to_dict(config).items() if k != "seed"}, sort_keys=True, default=str)
    path = out / "config.json"
    if path.exists() and path.read_text() != settings:
        raise UserError(f"{out} holds a teacher-noise study of another base config ({path}); delete that "
                        "directory to start over with this one")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, settings)


def run_cell(work: Path, config, split: int, study: NoiseStudy, cell: Path, workers=None) -> list[dict]:
    """Stage 1 on the source subjects, then every arm's stage 2 scored on the simulated target;
    `workers`: the `FitWorkers` that train each stage's fits at once (None: one after the other)."""
    from hiddenemo.data.workspace import Workspace
    from hiddenemo.eval.labelshift import class_weights
    from hiddenemo.train.build import candidate_encoders, encoder_name
    from hiddenemo.train.data import input_dims, pooled_inputs
    from hiddenemo.train.run import _set_threads
    from hiddenemo.train.selection import make_folds
    from hiddenemo.train.stages import Context, chosen, run_stage1

    _set_threads(config.threads)
    ws = Workspace(work)
    info, manifest = ws.info, ws.manifest
    labeled, _ = ws.training_split()                                          # label 1 = positive
    held = holdout_splits(labeled, study.splits, config.seed, config.selection) == split
    source, target = labeled[~held].reset_index(drop=True), labeled[held].reset_index(drop=True)
    cell.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cell / "target.csv", target[["video_id", "subject_id"]].to_csv(index=False))
    # From here on only the source rows (video_id, label, subject_id) reach training as labeled rows:
    # folds, epochs, thresholds and the teacher's calibration are all chosen on them.
    folds = make_folds(source, config.selection, config.seed)
    pooled = pooled_inputs(work, manifest, config, info.extra.get("event_groups"),
                           {m: candidate_encoders(config.model, m) for m in config.model.modalities})
    configured = {m: encoder_name(config.model, m) for m in config.model.modalities}
    dims = input_dims(ws.store, source["video_id"].tolist(), configured, config, pooled)
    ctx = Context(work, cell, config, dims, class_weights(source["label"]), pooled, workers=workers)
    stage1 = run_stage1(ctx, source, folds)
    ctx = chosen(ctx, stage1)
    reference = _cached(cell / "stage1.json", lambda: _stage1_on_target(ctx, stage1, target))
    common = {"seed": config.seed, "split": split, "n_source": len(source), "n_target": len(target),
              "stage1_auroc": reference["auroc"], "stage1_balanced_accuracy": reference["balanced_accuracy"]}

    results = []
    for arm, pseudo, facts in arms(work, manifest, config, study, target):
        def score(arm=arm, pseudo=pseudo, facts=facts):
            arm_ctx, sel, _ = _stage2(ctx, cell / arm, source, folds, pseudo, stage1)
            return {**facts, "n_pseudo": len(pseudo), **_on_target(arm_ctx, sel, target)}
        results.append(_row(common, arm, {**_cached(cell / arm / "result.json", score), **facts}))
    real = [a for a in results if a["arm"].startswith("real")]
    if real and config.self_training.rounds:
        first = real[0]["arm"]
        pseudo = next(p for a, p, _ in arms(work, manifest, config, study, target) if a == first)
        result = _cached(cell / "self-training" / "result.json",
                         lambda: _self_training(ctx, cell / first, source, folds, pseudo, stage1, target))
        kept = _kept_noise(cell / first / "stage2" / f"round{config.self_training.rounds}", target)
        results.append(_row(common, "self-training", {**result, **kept}))
    return results


def arms(work: Path, manifest: pd.DataFrame, config, study: NoiseStudy, target: pd.DataFrame):
    """(arm name, pseudo-label rows for the target videos, facts about the teacher) per arm."""
    y = target["label"].to_numpy()
    yield "none", pd.DataFrame(columns=["video_id", "target", "weight"]), {"kind": "none"}
    weight = float(config.pseudo.policy.weight)
    for rate in study.noise_rates:
        rng = np.random.default_rng([config.seed, int(round(rate * 1000)), len(y)])
        labels = simulated_teacher(y, rate, study.noise_kind, rng)
        pseudo = pd.DataFrame({"video_id": target["video_id"], "target": labels.astype(np.float32), "weight": weight})
        kind = "" if study.noise_kind == "uniform" else f"-{study.noise_kind}"
        yield f"noise-{rate:.2f}{kind}", pseudo, {"kind": "simulated", "rate": rate, "noise_kind": study.noise_kind,
                                                  "weight": weight, **label_noise(labels, y)}
    if study.real:
        yield from _real_arms(work, manifest, config, study, target)


def _real_arms(work: Path, manifest: pd.DataFrame, config, study: NoiseStudy, target: pd.DataFrame):
    """The real teacher's verdicts on the target videos under the base policy and each asked weight /
    confidence cut-off, calibrated (when the policy says so) on the source videos' answers only."""
    from hiddenemo.data.workspace import Workspace
    from hiddenemo.teacher.policy import apply_policy, training_answers
    from hiddenemo.teacher.store import read_verdicts

    verdicts = read_verdicts(work, config.pseudo.teacher)
    base = config.pseudo.policy
    calibration = training_answers(Workspace(work), verdicts, exclude=set(target["video_id"])) if base.calibrate else None
    truth = target.set_index("video_id")["label"]
    answers = {v: verdicts[v].p_positive for v in target["video_id"]
               if v in verdicts and verdicts[v].p_positive is not None}
    for weight in study.weights or (base.weight,):
        for cutoff in study.cutoffs or (base.min_confidence,):
            policy = replace(base, weight=float(weight), min_confidence=float(cutoff))
            pseudo = apply_policy(answers, policy, calibration)
            noise = label_noise(pseudo["target"].to_numpy() >= 0.5, truth.loc[pseudo["video_id"]].to_numpy())
            yield f"real-w{weight:g}-c{cutoff:g}", pseudo, {
                "kind": "real", "teacher": config.pseudo.teacher, "weight": float(weight), "cutoff": float(cutoff),
                "teacher_coverage": len(pseudo) / len(target), **noise}


def label_noise(labels: np.ndarray, y: np.ndarray) -> dict:
    """The share of wrong pseudo-labels, overall and per true class (a teacher calibrated to an
    imbalanced prior errs mostly on the rarer class: its overall noise hides that)."""
    wrong, y = np.asarray(labels).astype(int) != np.asarray(y).astype(int), np.asarray(y).astype(int)
    share = lambda mask: float(wrong[mask].mean()) if mask.any() else float("nan")   # noqa: E731
    return {"teacher_noise": share(np.ones(len(y), bool)), "noise_on_positives": share(y == 1),
            "noise_on_negatives": share(y == 0)}


def _stage2(ctx, arm_dir: Path, source: pd.DataFrame, folds: np.ndarray, pseudo: pd.DataFrame, stage1: dict):
    """`run_stage2` of one arm in its own directory, its encoders from the cell's shared stage 1. The
    fits are named as in a run (stage2/fold<k>), so every arm starts from the same seeded state. Each
    arm keeps its pseudo-labels (`pseudo.use: always`): the study measures what they do."""
    from hiddenemo.train.stages import run_stage2

    config = replace(ctx.config, pseudo=replace(ctx.config.pseudo, use="always", in_folds=False))
    arm_ctx = replace(ctx, run_dir=arm_dir, config=config)
    shared = {m: {**s, "dir": os.path.relpath(ctx.run_dir / s["dir"], arm_dir)} for m, s in stage1.items()}
    return arm_ctx, run_stage2(arm_ctx, source, folds, pseudo, shared), shared


def _self_training(ctx, arm_dir: Path, source, folds, pseudo, stage1, target: pd.DataFrame) -> dict:
    """The base config's self-training rounds after the real-teacher arm (its fits are reused), the
    target videos relabelled by each fold's own student; the noise of the last round's kept labels."""
    from hiddenemo.train.selftrain import self_train

    arm_ctx, first, shared = _stage2(ctx, arm_dir, source, folds, pseudo, stage1)
    sel = self_train(arm_ctx, source, folds, target["video_id"].tolist(), first, shared)
    return {"kind": "self-training", "rounds": len(sel["rounds"]) - 1, "weight": ctx.config.self_training.weight,
            **_kept_noise(arm_dir / sel["dir"], target), **_on_target(arm_ctx, sel, target)}


def _kept_noise(round_dir: Path, target: pd.DataFrame) -> dict:
    """The noise of a self-training round's kept pseudo-labels, averaged over the folds' chains."""
    truth = target.set_index("video_id")["label"]
    kept = [pd.read_csv(p, dtype={"video_id": str}) for p in sorted(round_dir.glob("pseudo_fold*.csv"))]
    noise = pd.DataFrame([label_noise(k["target"].to_numpy(), truth.loc[k["video_id"]].to_numpy()) for k in kept])
    return {**noise.mean().to_dict(), "n_pseudo": float(np.mean([len(k) for k in kept]))}


def _stage1_on_target(ctx, stage1: dict, target: pd.DataFrame) -> dict:
    """The stage-1 model a run would compare against: the modality with the best source out-of-fold
    AUROC (chosen without the target), scored on the target videos."""
    best = max(stage1, key=lambda m: np.nan_to_num(stage1[m]["cv_metrics"]["auroc"], nan=-1.0))
    return {"modality": best, **_on_target(ctx, stage1[best], target, modalities=[best])}


def _on_target(ctx, sel: dict, target: pd.DataFrame, modalities: list[str] | None = None) -> dict:
    """AUROC, balanced accuracy and accuracy on the target videos of the fold ensemble of `sel` (its
    chosen epoch and threshold): fused when `modalities` is None."""
    import torch

    from hiddenemo.eval.metrics import binary_metrics
    from hiddenemo.train.build import build_model, load_weights
    from hiddenemo.train.predict import apply_threshold, vote

    fused = modalities is None
    modalities = modalities or ctx.config.model.modalities
    directory = ctx.run_dir / sel.get("dir", "stage2")
    nets = []
    for path in sorted(directory.glob(f"fold*/epoch-{sel['epochs']}.safetensors")):
        nets.append(build_model(ctx.config.model, modalities, ctx.dims, fused=fused, dropout=0.0))
        load_weights(nets[-1], path)
    with torch.inference_mode():
        votes = vote(nets, ctx.dataset(modalities, target[["video_id"]], train=False),
                     batch_size=ctx.config.stage2.batch_size)
    p = votes["p_positive"].to_numpy()
    m = binary_metrics(target["label"].to_numpy(), p, apply_threshold(p, sel["threshold"]))
    return {"auroc": float(m["auroc"]), "balanced_accuracy": float(m["balanced_accuracy"]),
            "accuracy": float(m["accuracy"]), "source_cv_auroc": float(sel["cv_metrics"]["auroc"])}


def _row(common: dict, arm: str, result: dict) -> dict:
    return {**common, "arm": arm, **result, "gain_auroc": result["auroc"] - common["stage1_auroc"],
            "gain_balanced_accuracy": result["balanced_accuracy"] - common["stage1_balanced_accuracy"]}


def _cached(path: Path, compute) -> dict:
    """A cell's result file: read when it exists, else computed and written atomically (resume)."""
    if path.exists():
        return json.loads(path.read_text())
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=2, default=float))
    return result


def summarise(per_arm: pd.DataFrame) -> pd.DataFrame:
    """Per arm over cells: teacher noise, the student on the target, its gain over stage 1 with a 95 %
    t-interval over the cells and a one-sample t-test; a stage-1 row first."""
    from scipy import stats

    def interval(x: pd.Series) -> tuple[float, float, float]:
        if len(x) < 2 or x.std(ddof=1) == 0:
            return float(x.mean()), float("nan"), float("nan")
        half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
        return float(x.mean() - half), float(x.mean() + half), float(stats.ttest_1samp(x, 0.0).pvalue)

    none = per_arm[per_arm["arm"] == "none"].set_index(["seed", "split"])["auroc"]
    per_arm = per_arm.assign(gain_vs_none=per_arm["auroc"].to_numpy()
                             - none.reindex(pd.MultiIndex.from_frame(per_arm[["seed", "split"]])).to_numpy())
    first = per_arm.drop_duplicates(["seed", "split"])
    rows = [{"arm": "stage 1", "kind": "stage1", "cells": len(first), "auroc": first["stage1_auroc"].mean(),
             "auroc_std": first["stage1_auroc"].std(ddof=1),
             "balanced_accuracy": first["stage1_balanced_accuracy"].mean()}]
    for arm, g in per_arm.groupby("arm", sort=False):
        lo, hi, p = interval(g["gain_auroc"])
        b_lo, b_hi, _ = interval(g["gain_balanced_accuracy"])
        n_lo, n_hi, n_p = interval(g["gain_vs_none"]) if arm != "none" else (np.nan, np.nan, np.nan)
        rows.append({"arm": arm, "kind": g["kind"].iloc[0], "rate": g["rate"].iloc[0] if "rate" in g else np.nan,
                     "weight": g["weight"].iloc[0] if "weight" in g else np.nan,
                     "cutoff": g["cutoff"].iloc[0] if "cutoff" in g else np.nan, "cells": len(g),
                     **{c: g[c].mean() if c in g else np.nan
                        for c in ("teacher_noise", "noise_on_positives", "noise_on_negatives")},
                     "n_pseudo": g["n_pseudo"].mean(), "auroc": g["auroc"].mean(), "auroc_std": g["auroc"].std(ddof=1),
                     "balanced_accuracy": g["balanced_accuracy"].mean(),
                     "gain_auroc": g["gain_auroc"].mean(), "gain_auroc_lo": lo, "gain_auroc_hi": hi, "gain_p": p,
                     "gain_balanced_accuracy": g["gain_balanced_accuracy"].mean(),
                     "gain_balanced_accuracy_lo": b_lo, "gain_balanced_accuracy_hi": b_hi,
                     "gain_vs_none": g["gain_vs_none"].mean(), "gain_vs_none_lo": n_lo, "gain_vs_none_hi": n_hi,
                     "gain_vs_none_p": n_p})
    return pd.DataFrame(rows)


def crossing_point(table: pd.DataFrame, column: str = "gain_auroc") -> dict:
    """The pseudo-label noise at which the simulated arms' mean AUROC gain (`column`: over stage 1, or `gain_vs_none`:
    over stage 2 without pseudo-labels) falls through zero, linear between grid points; or why there
    is none within the grid."""
    over = "stage 1" if column == "gain_auroc" else "stage 2 without pseudo-labels"
    # On the measured share of wrong pseudo-labels (the plot's axis, where the real teacher is placed);
    # for uniform noise that is the asked rate.
    curve = table[table["kind"] == "simulated"].sort_values("teacher_noise")
    rates, gains = curve["teacher_noise"].to_numpy(float), curve[column].to_numpy(float)
    if not len(rates):
        return {"rate": None, "text": "no simulated arms"}
    for i in range(len(rates) - 1):
        if gains[i] > 0 >= gains[i + 1]:
            rate = rates[i] + (rates[i + 1] - rates[i]) * gains[i] / (gains[i] - gains[i + 1])
            return {"rate": float(rate), "text": f"the mean AUROC gain over {over} crosses zero at {rate:.0%} "
                                                 "teacher noise"}
    if (gains > 0).all():
        return {"rate": None, "text": f"the mean AUROC gain over {over} stays above zero up to {rates[-1]:.0%} noise"}
    if (gains <= 0).all():
        return {"rate": None, "text": f"the mean AUROC gain over {over} is never above zero at any noise rate "
                                      "of the grid"}
    return {"rate": None, "text": f"the mean AUROC gain over {over} changes sign more than once (noisy curve): " +
            ", ".join(f"{r:.0%}: {g:+.3f}" for r, g in zip(rates, gains))}


def gain_at(table: pd.DataFrame, noise: float, column: str = "gain_auroc") -> tuple[float, float, float]:
    """The simulated curve's mean gain `column` (and its interval) at a teacher noise, interpolated."""
    curve = table[table["kind"] == "simulated"].sort_values("teacher_noise")
    x = curve["teacher_noise"].to_numpy(float)
    return tuple(float(np.interp(noise, x, curve[c].to_numpy(float))) for c in (column, f"{column}_lo", f"{column}_hi"))


def render_markdown(table: pd.DataFrame, crossing: dict, seeds: int, study: NoiseStudy, base: Path | None) -> str:
    cells = int(table["cells"].iloc[0])
    lines = [f"### Ablation `{STUDY}` ({seeds} seeds x {study.splits} subject splits = {cells} cells; base "
             f"{base or 'defaults'}; noise {study.noise_kind})", "",
             "Scored on the simulated target (held-out subjects of the labeled training videos, labels hidden "
             "from training). Gain = student minus the stage-1 model of the same cell on the same videos; 95 % "
             "t-interval over cells and one-sample t-test p.", "",
             "| arm | teacher noise (on positives, negatives) | pseudo-labeled | student AUROC | student bal. acc. "
             "| AUROC gain [95 % CI] (p) | bal. acc. gain [95 % CI] | AUROC vs `none` [95 % CI] (p) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in table.to_dict(orient="records"):
        if r["kind"] == "stage1":
            lines.append(f"| stage 1 (reference) | | | {r['auroc']:.3f} ± {r['auroc_std']:.3f} "
                         f"| {r['balanced_accuracy']:.3f} | | | |")
            continue
        noise = (f"{r['teacher_noise']:.1%} (pos. {r['noise_on_positives']:.0%}, neg. {r['noise_on_negatives']:.0%})"
                 if pd.notna(r["teacher_noise"]) else "—")
        lines.append(f"| {r['arm']} | {noise} | {r['n_pseudo']:.0f} | {r['auroc']:.3f} ± {r['auroc_std']:.3f} "
                     f"| {r['balanced_accuracy']:.3f} | {r['gain_auroc']:+.3f} [{r['gain_auroc_lo']:+.3f}, "
                     f"{r['gain_auroc_hi']:+.3f}] (p={r['gain_p']:.2f}) | {r['gain_balanced_accuracy']:+.3f} "
                     f"[{r['gain_balanced_accuracy_lo']:+.3f}, {r['gain_balanced_accuracy_hi']:+.3f}] | "
                     + ("" if r["arm"] == "none" else f"{r['gain_vs_none']:+.3f} [{r['gain_vs_none_lo']:+.3f}, "
                        f"{r['gain_vs_none_hi']:+.3f}] (p={r['gain_vs_none_p']:.2f})") + " |")
    lines += ["", f"Crossing point: {crossing['text']}; "
              f"{crossing_point(table, 'gain_vs_none')['text']}."]
    for r in table[table["kind"].isin(["real", "self-training"])].to_dict(orient="records"):
        lines.append(f"On the curve: `{r['arm']}` at {r['teacher_noise']:.1%} noise, gain {r['gain_auroc']:+.3f} "
                     f"(the simulated curve there: {gain_at(table, r['teacher_noise'])[0]:+.3f}; `none`: "
                     f"{r['gain_auroc'] - r['gain_vs_none']:+.3f}).")
    lines += ["", f"![gain vs teacher noise]({output_name(study)}.png)"]
    return "\n".join(lines)


def output_name(study: NoiseStudy) -> str:
    """teacher-noise (uniform noise: the curve `train`'s guidance reads), teacher-noise-<kind> otherwise."""
    return STUDY if study.noise_kind == "uniform" else f"{STUDY}-{study.noise_kind}"


def write_outputs(out: Path, per_arm: pd.DataFrame, table: pd.DataFrame, seeds: int, study: NoiseStudy,
                  base: Path | None, teacher: str | None) -> None:
    from hiddenemo.report.plots import noise_curve

    crossing, name = crossing_point(table), output_name(study)
    markdown = render_markdown(table, crossing, seeds, study, base)
    atomic_write_text(out / f"{name}.md", markdown + "\n")
    atomic_write_text(out / f"{name}.csv", table.to_csv(index=False))
    atomic_write_text(out / f"{name}_cells.csv", per_arm.to_csv(index=False))
    atomic_write_text(out / f"{name}.json", json.dumps(
        {"study": STUDY, "seeds": seeds, "splits": study.splits, "noise_kind": study.noise_kind,
         "base_config": str(base), "teacher": teacher, "crossing": crossing,
         "crossing_vs_none": crossing_point(table, "gain_vs_none"),
         "rows": table.to_dict(orient="records")}, indent=2, default=float))
    (out / f"{name}.png").write_bytes(noise_curve(table, crossing.get("rate"), crossing_point(table, "gain_vs_none")["rate"]))
    print("\n" + markdown)


def print_recommendation(work: Path, run: str) -> None:
    """`recommendation` on stderr (stdout stays train's JSON); guidance never fails a finished run."""
    import sys

    try:
        advice = recommendation(work, run)
    except (UserError, ValueError, KeyError, OSError) as e:
        log.warning("no pseudo-label guidance for this run: %s", e)
        return
    if advice:
        print(advice, file=sys.stderr)


def recommendation(work: Path, run: str) -> str | None:
    """Guidance printed by `train` (never applied): the run's teacher, its out-of-fold accuracy on the
    labeled training videos (calibrated on the other folds when the policy calibrates), and what the
    teacher-noise study's curve, when there is one, expects of stage 2 at that noise."""
    from hiddenemo.data.workspace import Workspace
    from hiddenemo.rundir import Run
    from hiddenemo.teacher.policy import apply_policy, training_answers
    from hiddenemo.teacher.store import read_verdicts

    ws = Workspace.of(work)
    work = ws.work
    handle = Run(work, run)
    config, oof = handle.config, handle.oof()
    if not (config.stage2_enabled and config.pseudo.teacher) or oof is None:
        return None
    verdicts = read_verdicts(work, config.pseudo.teacher)
    policy = config.pseudo.policy
    videos = oof.drop_duplicates("video_id").set_index("video_id")           # fold and y_true (1 = positive)
    said, truth = [], []
    for fold in sorted(videos["fold"].unique()):
        held = videos.index[videos["fold"] == fold]
        calibration = training_answers(ws, verdicts, exclude=set(held)) if policy.calibrate else None
        answers = {v: verdicts[v].p_positive for v in held if v in verdicts and verdicts[v].p_positive is not None}
        labels = apply_policy(answers, replace(policy, min_confidence=0.0), calibration)
        said += list(labels["target"].to_numpy() >= 0.5)
        truth += list(videos.loc[labels["video_id"], "y_true"].to_numpy())
    if not said:
        return None
    noise = label_noise(np.array(said), np.array(truth))
    lines = [f"guidance (not applied): teacher {config.pseudo.teacher}'s pseudo-labels are wrong on "
             f"{noise['teacher_noise']:.1%} of {len(said)} labeled training videos out-of-fold "
             f"({noise['noise_on_positives']:.0%} of positives, {noise['noise_on_negatives']:.0%} of negatives)."]
    if config.pseudo.use != "if-better":
        lines.append("  `--pseudo.in_folds true --pseudo.use if-better` lets stage 2 check, in its own folds, whether "
                     "these pseudo-labels help the videos they label, and leave them out when they do not.")
    path = Path(work) / "ablations" / f"{STUDY}.json"
    if not path.exists():
        lines.append(f"  Run `hiddenemo ablate --work {work} --study {STUDY} --base <this config>` to learn at which "
                     "noise stage 2's pseudo-labels stop helping on this data.")
        return "\n".join(lines)
    study = json.loads(path.read_text())
    table = pd.DataFrame(study["rows"])
    own, own_lo, own_hi = gain_at(table, noise["teacher_noise"], "gain_vs_none")
    lines.append(f"  The teacher-noise study ({path}; base {study['base_config']}): with errors spread evenly over both "
                 f"classes, pseudo-labels at that noise add {own:+.3f} [{own_lo:+.3f}, {own_hi:+.3f}] AUROC over stage 2 "
                 f"without them; {study['crossing_vs_none']['text']}.")
    real = table[table["kind"] == "real"] if study.get("teacher") == config.pseudo.teacher else table.iloc[:0]
    if len(real):
        same = real[(real["weight"] == policy.weight) & (real["cutoff"] == policy.min_confidence)]
        measured = (same if len(same) else real).iloc[0]
        own, own_lo, own_hi = measured["gain_vs_none"], measured["gain_vs_none_lo"], measured["gain_vs_none_hi"]
        lines.append(f"  Measured with this teacher on held-out subjects (weight {measured['weight']:g}, min_confidence "
                     f"{measured['cutoff']:g}): {measured['teacher_noise']:.1%} noise ({measured['noise_on_positives']:.0%}"
                     f" of positives, {measured['noise_on_negatives']:.0%} of negatives), {own:+.3f} [{own_lo:+.3f}, "
                     f"{own_hi:+.3f}] over stage 2 without pseudo-labels.")
        best = real.loc[real["gain_vs_none"].idxmax()]
        if len(real) > 1:
            lines.append(f"  Best policy the study found for this teacher: pseudo.policy weight {best['weight']:g}, "
                         f"min_confidence {best['cutoff']:g} ({best['gain_vs_none']:+.3f} over stage 2 without "
                         "pseudo-labels).")
    verdict = ("expected to help" if own_lo > 0 else "expected to hurt" if own_hi < 0 else
               "leaning to help, not clearly" if own > 0.005 else "not expected to help")
    lines.append(f"  => stage 2 with these pseudo-labels: {verdict}"
                 + ("" if len(real) else " (from the even-error curve: a teacher whose errors pile on one class "
                                         "does worse)") + ".")
    return "\n".join(lines)
