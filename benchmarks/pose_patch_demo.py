"""Keypoints bound to DINOv2 patches (`pose-patch`) vs keypoints alone (`pose-mlp`) vs frames alone, on
the synthetic demo set: the `modalities` ablation (seeds 0..n-1, cross-validated on the labeled videos,
paired tests against pose-mlp), then the same runs scored on the held-out target videos with the
labels the generator withheld (read only here, after every run has predicted).

    python benchmarks/pose_patch_demo.py --out /tmp/pose-patch --seeds 3

Steps, each skipped when done (as in `hiddenemo demo`): the synthetic set (seed 0, 96 videos), the
workspace with OpenPose keypoints, DINOv2-S frames every 10th frame with keypoints bound to patches
(`patches_dim` 16), the ablation runs (configs/demo.yaml sizes), the held-out table. Writes
WORK/ablations/modalities.md (cross-validated) and WORK/ablations/modalities_heldout.md.

Then a diagnostic of where the information is: per embedded frame of the labeled videos, does a
cue's per-frame truth (the generator's own envelopes; no emotion label) show in the bound patch
features at the cue's points, in the frame's CLS embedding, in the points' positions? A logistic
regression, cross-validated with whole videos held out, scored by AUROC. `flush` is drawn in the
pixels only, `clench` moves the hand keypoints of mitten hands, `smile` moves the mouth corners.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from hiddenemo.ablate import REFERENCE, _versus, run_study
from hiddenemo.data.workspace import Workspace
from hiddenemo.demo import DEMO_CONFIG
from hiddenemo.eval.metrics import binary_metrics
from hiddenemo.rundir import Run

STUDY = "modalities"


def prepare(out: Path, patches_dim: int) -> Path:
    from hiddenemo.commands import dataset, extract
    from hiddenemo.synthetic import generate
    from hiddenemo.extract.config import ExtractConfig

    data, work = out / "data", out / "work"
    generate(data, seed=0, n_videos=96, n_frames=200)
    if not (work / "manifest.parquet").exists():
        dataset.imigue(labels=data / "labels_20200831.csv", splits=data / "splits.csv", out=work, protocol="miga",
                       videos=data / "videos", openpose=data / "openpose")
    extract.extract(work=work, extract=ExtractConfig(box="pose-box", keypoints="openpose-json", frames="dinov2-s",
                                                     frames_every=10, patches_dim=patches_dim))
    return work


def held_out(work: Path, truth_csv: Path) -> str:
    """Each run of the study scored on the target videos; paired tests of each variant's seed-averaged
    predictions against the reference's (bootstrap, McNemar) and of the per-seed AUROC (t-test)."""
    from scipy.stats import ttest_rel

    truth = pd.read_csv(truth_csv, dtype={"video_id": str})
    truth["label"] = (truth["win_or_lose"].str.lower() == Workspace(work).positive.lower()).astype(int)
    runs = pd.read_csv(work / "ablations" / f"{STUDY}_runs.csv")
    scored, averaged = [], {}
    for variant, group in runs.groupby("variant", sort=False):
        parts, thresholds = [], []
        for seed, run in zip(group["seed"], group["run"]):
            predicted = Run(work, run).predictions()
            preds, threshold = predicted.table, predicted.threshold
            both = truth.merge(preds[["video_id", "p_positive"]], on="video_id")
            m = binary_metrics(both["label"].to_numpy(), both["p_positive"].to_numpy(float), threshold)
            scored.append({"variant": variant, "seed": seed, "n": len(both), **{k: m[k] for k in
                                                                                ("auroc", "balanced_accuracy")}})
            parts.append(both), thresholds.append(threshold)
        mean = pd.concat(parts).groupby("video_id", as_index=False).agg(p_positive=("p_positive", "mean"),
                                                                         label=("label", "first"))
        averaged[variant] = (mean, float(np.mean(thresholds)))
    per_run = pd.DataFrame(scored)
    reference = REFERENCE[STUDY]
    ref_auroc = per_run[per_run["variant"] == reference].set_index("seed")["auroc"]
    lines = [f"### `{STUDY}` on the held-out target videos ({per_run['n'].iloc[0]} videos, labels withheld from "
             "every run)", "",
             "| variant | balanced accuracy | AUROC | vs reference (paired bootstrap p) | per-seed AUROC difference "
             "(paired t-test p) |", "| --- | --- | --- | --- | --- |"]
    for variant, group in per_run.groupby("variant", sort=False):
        cells = [f"{group[m].mean():.3f} ± {group[m].std(ddof=1):.3f}" for m in ("balanced_accuracy", "auroc")]
        versus, per_seed = "reference", ""
        if variant != reference:
            versus = _versus(averaged[reference], averaged[variant])["vs_reference"]
            a, b = group.set_index("seed")["auroc"].align(ref_auroc, join="inner")
            p = ttest_rel(a, b).pvalue if (a - b).std() > 0 else float("nan")
            per_seed = f"{(a - b).mean():+.3f} (p={p:.2f})"
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {versus} | {per_seed} |")
    lines += ["", "Mean ± std over seeds; balanced accuracy at each run's own threshold (chosen on its out-of-fold "
              "predictions of the labeled videos). Paired bootstrap: the seed-averaged probabilities of a variant "
              "and the reference on the same target videos."]
    text = "\n".join(lines)
    (work / "ablations" / f"{STUDY}_heldout.md").write_text(text + "\n")
    (work / "ablations" / f"{STUDY}_heldout_runs.csv").write_text(per_run.to_csv(index=False))
    return text


PROBES = {"flush": [3, 31, 13, 35], "smile": [48, 54, 3, 13]}     # face points (OpenPose 68) at the cue


def frame_probe(work: Path, seed: int = 0, n_videos: int = 96, n_frames: int = 200) -> str:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from hiddenemo.data.layout import POSE_GROUPS
    from hiddenemo.data.store import Store
    from hiddenemo.synthetic.plan import envelopes, plan_dataset

    store = Store(work)
    plans = [p for p in plan_dataset(seed, n_videos, n_frames) if p.split == "train"]
    face, hands = POSE_GROUPS["face"].start, range(POSE_GROUPS["hands"].start, POSE_GROUPS["hands"].stop)
    points = {cue: [face + i for i in pts] for cue, pts in PROBES.items()} | {"clench": list(hands)}
    lines = ["| cue (per-frame truth) | active frames | bound patches at its points | frame CLS | positions of "
             "its points |", "| --- | --- | --- | --- | --- |"]
    for cue, pts in points.items():
        inputs, y, groups = {"patches": [], "cls": [], "xy": []}, [], []
        for plan in plans:
            env, idx = envelopes(plan)[cue], store.load(plan.video_id, "frames_idx")
            idx = idx[idx < len(env)]
            n = len(idx)
            inputs["patches"].append(np.nan_to_num(store.load(plan.video_id, "pose_patch")[:n][:, pts].reshape(n, -1)))
            inputs["cls"].append(store.load(plan.video_id, "frames")[:n])
            inputs["xy"].append(np.nan_to_num(store.load(plan.video_id, "pose")[idx][:, pts, :2].reshape(n, -1)))
            y.append(env[idx] > 0.5), groups.append(np.full(n, plan.video_id))
        y, groups = np.concatenate(y), np.concatenate(groups)
        cells = []
        for parts in inputs.values():
            x = np.concatenate(parts).astype(np.float32)
            p = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)), x, y,
                                  groups=groups, cv=GroupKFold(5), method="predict_proba")[:, 1]
            cells.append(f"{roc_auc_score(y, p):.3f} ({x.shape[1]}-d)")
        lines.append(f"| {cue} | {int(y.sum())} of {len(y)} | " + " | ".join(cells) + " |")
    text = "\n".join(["### Per-frame probe: which features show a cue (AUROC, 5 folds by video)", "", *lines])
    (work / "ablations" / f"{STUDY}_probe.md").write_text(text + "\n")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for data/ and work/ (resumable)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--patches-dim", type=int, default=16, help="stored width of a bound patch feature")
    args = parser.parse_args()
    work = prepare(args.out, args.patches_dim)
    run_study(work, STUDY, args.seeds, DEMO_CONFIG)
    print("\n" + held_out(work, args.out / "data" / "target_labels.csv"))
    print("\n" + frame_probe(work))
    print(json.dumps({"work": str(work)}))


if __name__ == "__main__":
    main()
