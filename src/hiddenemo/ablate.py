"""The paper's ablation tables (Tables 1-3) as studies: each a set of training-config overlays, run
with several seeds on one workspace and printed as mean ± std of the cross-validated figures.

Every variant is an ordinary `hiddenemo train` run (`WORK/runs/ablate-<study>-<variant>-s<seed>`)
started through the CLI with the base config and the variant's overlay, so a study resumes like any
run and every number in its table is reproducible from a config file and a seed. Differences are
tested against the study's reference row with a paired bootstrap and McNemar on the out-of-fold
predictions (averaged over seeds per video): only the labeled training videos are used, never test
labels.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from hiddenemo.data.store import atomic_write_text
from hiddenemo.errors import UserError
from hiddenemo.rundir import Run

METRICS = ("accuracy", "balanced_accuracy", "auroc")

# (variant name, overlay, which model's CV figures the row reports)
POSE_ENCODERS = [
    (f"{enc}{'+offsets' if off else ''}",
     {"model": {"modalities": ["pose"], "encoders": {"pose": f"pose-{enc}"}},
      "sampling": {"offsets": [8, 16, 24] if off else []}, "stage2_enabled": False},
     "stage1/pose")
    for enc in ("gcn", "gin", "gat", "mlp") for off in (False, True)
]

FRAME_ENCODERS = [
    ("dinov2+transformer",
     {"model": {"modalities": ["frames"], "encoders": {"frames": "frames-transformer"}}, "stage2_enabled": False},
     "stage1/frames"),
    # The same per-frame encoder on a 16-frame clip without the long Transformer (frames-clip16): what
    # the long temporal model adds, and the stand-in for X-CLIP when its features were not extracted.
    ("16-frame clip (X-CLIP stand-in)",
     {"model": {"modalities": ["frames"], "encoders": {"frames": "frames-clip16"}},
      "sampling": {"n_frames": 16}, "stage2_enabled": False},
     "stage1/frames"),
]
XCLIP_ROW = ("X-CLIP (16-frame clips, pooled)",
             {"model": {"modalities": ["frames"], "encoders": {"frames": "frames-xclip"}}, "stage2_enabled": False},
             "stage1/frames")


def frame_encoder_variants(modalities: list[str], work: Path | None = None) -> list[tuple[str, dict, str]]:
    """Table 2: the X-CLIP row where the workspace has X-CLIP features (`extract --extract.frames xclip`);
    without them, say so plainly and keep the stand-in only."""
    if work is not None and any((work / "store").glob("*/frames_xclip.npy")):
        return [*FRAME_ENCODERS, XCLIP_ROW]
    print("frame-encoders: no X-CLIP features in this workspace (make them with `hiddenemo extract "
          "--extract.frames xclip --extract.frames_model <hub name or local copy>`); the 16-frame clip row is "
          "the stand-in, not X-CLIP", flush=True)
    return FRAME_ENCODERS


# Each modality alone; keypoints with and without the DINOv2 patch each point falls in.
MODALITY_VARIANTS = [
    ("pose (pose-mlp)", {"model": {"modalities": ["pose"], "encoders": {"pose": "pose-mlp"}}, "stage2_enabled": False},
     "stage1/pose"),
    ("pose + bound patches (pose-patch)",
     {"model": {"modalities": ["pose"], "encoders": {"pose": "pose-patch"}}, "stage2_enabled": False}, "stage1/pose"),
    ("frames (frames-transformer)",
     {"model": {"modalities": ["frames"], "encoders": {"frames": "frames-transformer"}}, "stage2_enabled": False},
     "stage1/frames"),
]


def strategy_variants(modalities: list[str]) -> list[tuple[str, dict, str]]:
    """Table 3: from a fused model trained directly, to weak supervision, offsets, per-modality
    pretraining and a contrastive term. The offsets row only where there are keypoints."""
    no_offsets = {"sampling": {"offsets": []}} if "pose" in modalities else {}
    rows = [
        ("fused, no pretraining", {**no_offsets, "stage1_enabled": False, "pseudo": {"teacher": None}}, "stage2"),
        ("+ weak supervision", {**no_offsets, "stage1_enabled": False}, "stage2"),
    ]
    if "pose" in modalities:
        rows.append(("+ offsets", {"stage1_enabled": False}, "stage2"))
    rows += [
        ("+ pretraining (the paper's pipeline)", {}, "stage2"),
        ("+ contrastive", {"stage1": {"contrastive_weight": 0.1}}, "stage2"),
    ]
    return rows


def stage_variants(modalities: list[str]) -> list[tuple[str, dict, str]]:
    """The base config as it is, one run per seed, read model by model: each modality's stage-1 model
    and the stage-2 model (with self-training when the config has it) — does stage 2 earn its place?"""
    return [*[(f"stage 1 {m}", {}, f"stage1/{m}") for m in modalities], ("stage 2", {}, "stage2")]


STUDIES = {"pose-encoders": lambda modalities, work=None: POSE_ENCODERS,
           "frame-encoders": frame_encoder_variants,
           "modalities": lambda modalities, work=None: MODALITY_VARIANTS,
           "strategy": lambda modalities, work=None: strategy_variants(modalities),
           "stages": lambda modalities, work=None: stage_variants(modalities)}
REFERENCE = {"pose-encoders": "mlp+offsets", "frame-encoders": "dinov2+transformer", "modalities": "pose (pose-mlp)",
             "strategy": "+ pretraining (the paper's pipeline)", "stages": "stage 2"}


def run_study(work: Path, study: str, seeds: int, base_config: Path | None) -> pd.DataFrame:
    """Run (or resume) every variant x seed, then write WORK/ablations/<study>.{md,csv,json}."""
    from hiddenemo.train.session import train_with
    from hiddenemo.train.config import load_train_config

    if study not in STUDIES:
        raise UserError(f"unknown study {study!r}; choose one of {sorted(STUDIES)}")
    work = Path(work)
    out = work / "ablations" / study
    out.mkdir(parents=True, exist_ok=True)
    base = _load_yaml(base_config) if base_config else {}
    modalities = base.get("model", {}).get("modalities", ["pose", "frames", "text"])
    variants = STUDIES[study](modalities, work)
    results, slugs = [], {}
    for variant, overlay, model_key in variants:
        overlay = _with_encoder_args(overlay, base)
        # variants with the same overlay read different models of the same runs
        slug = slugs.setdefault(json.dumps(overlay, sort_keys=True), _slug(variant))
        overlay_path = out / f"{slug}.yaml"
        atomic_write_text(overlay_path, yaml.safe_dump(overlay, sort_keys=False))
        for seed in range(seeds):
            run = f"ablate-{study}-{slug}-s{seed}"
            if not Run(work, run).training_finished:
                print(f"\n== ablate {study}: {variant}, seed {seed} -> runs/{run}", flush=True)
                overlays = [base_config, overlay_path] if base_config else [overlay_path]
                train_with(work, run, load_train_config(overlays, {"seed": seed}))
            cv = Run(work, run).metrics["cross_validated"][model_key]
            results.append({"variant": variant, "seed": seed, "run": run, "model": model_key,
                            **{m: cv[m] for m in METRICS}})
    per_run = pd.DataFrame(results)
    table = summarise(work, per_run, REFERENCE[study])
    _write(out.parent, study, per_run, table, seeds, base_config)
    return table


def summarise(work: Path, per_run: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Mean ± std over seeds, and paired tests of each variant against the reference: a bootstrap on
    the seed-averaged out-of-fold predictions, and a t-test of the per-seed AUROC differences."""
    from scipy.stats import ttest_rel

    rows = []
    # More than two classes: no threshold to pair decisions on; the per-seed t-test of the (mean
    # one-vs-rest) AUROC still compares the variants.
    many = Run(work, per_run["run"].iloc[0]).classes is not None
    ref = None if many else _mean_oof(work, per_run[per_run["variant"] == reference])
    ref_auroc = per_run[per_run["variant"] == reference].set_index("seed")["auroc"]
    for variant, group in per_run.groupby("variant", sort=False):
        row = {"variant": variant, "seeds": len(group)}
        for m in METRICS:
            row[m] = group[m].mean()
            row[f"{m}_std"] = group[m].std(ddof=1) if len(group) > 1 else float("nan")
        row.update({"vs_reference": "reference"} if variant == reference else
                   {"vs_reference": "paired bootstrap: two classes only"} if many else _versus(ref, _mean_oof(work, group)))
        paired = group.set_index("seed")["auroc"].align(ref_auroc, join="inner")
        if variant != reference and len(paired[0]) > 1:
            difference = paired[0] - paired[1]
            row["seeds_auroc_difference"] = float(difference.mean())
            row["seeds_t_p"] = float(ttest_rel(paired[0], paired[1]).pvalue) if difference.std() > 0 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_oof(work: Path, group: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Out-of-fold probabilities of one variant averaged per video over its seeds, and the mean of
    the thresholds its runs chose."""
    parts, thresholds = [], []
    for name, model_key in zip(group["run"], group["model"]):
        run = Run(work, name)
        parts.append(run.oof_by_model().get(model_key, pd.DataFrame(columns=["video_id", "p_positive", "y_true"])))
        thresholds.append(run.threshold(model_key)["threshold"])
    both = pd.concat(parts)
    mean = both.groupby("video_id", as_index=False).agg(p_positive=("p_positive", "mean"), label=("y_true", "first"))
    return mean, float(np.mean(thresholds))


def _versus(reference: tuple[pd.DataFrame, float], variant: tuple[pd.DataFrame, float]) -> dict:
    """AUROC (threshold-free) and balanced accuracy (each at its own runs' mean threshold), variant
    minus reference, from a paired bootstrap over the same videos; McNemar on the decisions."""
    from hiddenemo.eval.compare import compare_runs

    result = compare_runs(variant[0], reference[0], variant[1], reference[1])
    auroc, bal = result["metrics"]["auroc"], result["metrics"]["balanced_accuracy"]

    def cell(d):
        return f"{d['difference']:+.3f} (p={d['p_value']:.2f}{', significant' if d['significant'] else ''})"
    return {"vs_reference": f"AUROC {cell(auroc)}; bal. acc. {cell(bal)}", "mcnemar_p": result["mcnemar"]["p_value"]}


def render_markdown(table: pd.DataFrame, study: str, seeds: int) -> str:
    lines = [f"### Ablation `{study}` ({seeds} seeds; cross-validated on the labeled training videos)", "",
             "| variant | accuracy | balanced accuracy | AUROC | vs reference: difference (paired bootstrap p) "
             "| per-seed AUROC difference (paired t-test p) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in table.to_dict(orient="records"):
        cells = [f"{row[m]:.3f} ± {row[m + '_std']:.3f}" for m in METRICS]
        per_seed = (f"{row['seeds_auroc_difference']:+.3f} (p={row['seeds_t_p']:.2f})"
                    if pd.notna(row.get("seeds_auroc_difference", float("nan"))) else "")
        lines.append(f"| {row['variant']} | " + " | ".join(cells) + f" | {row['vs_reference']} | {per_seed} |")
    lines += ["", "Mean ± std over seeds of each run's out-of-fold figures; accuracy-type figures use the threshold "
              "each run chose on those same predictions (slightly optimistic). The paired test compares the "
              "seed-averaged out-of-fold probabilities of a variant and the reference on the same videos "
              "(2,000 bootstrap resamples; balanced accuracy at each variant's mean threshold); the t-test pairs each "
              "seed's AUROC with the reference's of the same seed."]
    return "\n".join(lines)


def _write(out: Path, study: str, per_run: pd.DataFrame, table: pd.DataFrame, seeds: int, base: Path | None) -> None:
    markdown = render_markdown(table, study, seeds)
    atomic_write_text(out / f"{study}.md", markdown + "\n")
    atomic_write_text(out / f"{study}.csv", table.to_csv(index=False))
    atomic_write_text(out / f"{study}_runs.csv", per_run.to_csv(index=False))
    atomic_write_text(out / f"{study}.json", json.dumps({"study": study, "seeds": seeds, "base_config": str(base),
                                                        "rows": table.to_dict(orient="records")}, indent=2, default=float))
    print("\n" + markdown)


def _with_encoder_args(overlay: dict, base: dict) -> dict:
    """A variant that swaps an encoder keeps the base config's sizes for it, minus the options the new
    encoder does not take (e.g. a 16-frame clip has no Transformer depth): the variants then differ
    only in what the study compares. The overlay carries the whole `encoder_args`, since a YAML
    overlay replaces a dict field rather than merging it."""
    from hiddenemo.models.registry import encoder_options

    swapped = overlay.get("model", {}).get("encoders", {})
    if not swapped:
        return overlay
    args = {m: dict(a) for m, a in base.get("model", {}).get("encoder_args", {}).items()}
    for modality, encoder in swapped.items():
        accepted = encoder_options(encoder)
        args[modality] = {k: v for k, v in args.get(modality, {}).items() if k in accepted}
    return {**overlay, "model": {**overlay["model"], "encoder_args": args}}


def _load_yaml(path: Path) -> dict:
    try:
        return yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"cannot read the base config {path}: {e}") from e


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")
