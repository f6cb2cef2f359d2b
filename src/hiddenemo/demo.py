"""The whole pipeline on the built-in synthetic dataset, from nothing to a report.

Every step is what one of the public subcommands runs (the same library function), called with the
demo's settings, so the demo exercises what a user runs. Every step is resumable: running the demo
again after an interruption skips what is done. At the end the held-out (target) labels, which the generator keeps
in a separate file that no step reads, score the teacher, each stage-1 modality and the fused
student: the weak-to-strong table.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:                          # pandas loads inside the functions: `hiddenemo --help` stays fast
    import pandas as pd

DEMO_CONFIG = Path(__file__).parent / "configs" / "demo.yaml"


@dataclass
class DemoConfig:
    """Sizes of the synthetic demo."""

    seed: int = 0
    """Seed of the dataset, the training and every sampling draw."""
    n_videos: int = 96
    """Synthetic videos (about a third become the unlabeled target set)."""
    n_frames: int = 200
    """Median frames per video (25 fps)."""
    frames_every: int = 10
    """Embed every n-th frame with DINOv2-S (the costliest step)."""
    workers: int = 0
    """Processes at once (0: one per core) drawing the synthetic videos, extracting them and training
    the fits of a stage."""
    train_config: Path = DEMO_CONFIG
    """Training overlay YAML (default: the packaged configs/demo.yaml)."""


def run_demo(out: Path, config: DemoConfig = DemoConfig()) -> dict:
    """Run every step into `out` (data/ and work/); returns the held-out table as a dict."""
    from hiddenemo.export.bundle import export_run
    from hiddenemo.extract.config import ExtractConfig
    from hiddenemo.extract.session import extract_workspace
    from hiddenemo.report.page import build_report
    from hiddenemo.rundir import Run
    from hiddenemo.synthetic import generate
    from hiddenemo.teacher.embed import embed_verdicts

    out = Path(out)
    data, work, run = out / "data", out / "work", f"demo-seed{config.seed}"
    timings: dict[str, float] = {}

    def step(name: str, fn, *args, **kwargs):
        print(f"\n== demo: {name}", flush=True)
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        timings[name] = time.perf_counter() - start
        print(f"== demo: {name} done in {timings[name]:.1f} s", flush=True)
        return result

    step("1/9 synthetic dataset", generate, data, seed=config.seed, n_videos=config.n_videos,
         n_frames=config.n_frames, workers=config.workers)
    step("2/9 workspace + keypoints (OpenPose JSON)", _workspace, data, work)
    step("3/9 frame embeddings (DINOv2-S)", extract_workspace, work, workers=config.workers,
         extract=ExtractConfig(box="pose-box", keypoints="openpose-json", frames="dinov2-s",
                               frames_every=config.frames_every))
    step("4/9 teacher (behaviour rules)", _teach, work)
    step("5/9 text embeddings (MiniLM)", embed_verdicts, work, "minilm", "behaviour")
    step("6/9 train: stage 1 per modality, stage 2 fused with pseudo-labels", _train, work, run, config)
    step("7/9 predict each stage-1 modality on the held-out set", _predict_stage1, work, run)
    step("8/9 report", build_report, work, run)
    model_dir = step("9/9 export the student", export_run, work, run, out / "model")

    table = held_out_table(work, run, data / "target_labels.csv")
    result = {"report": str(work / "runs" / run / "report.html"), "model": str(model_dir), "timings_s": timings,
              "held_out": table.to_dict(orient="records"), "seed": config.seed}
    Run(work, run).write_json("demo.json", result, default=float)
    print_summary(table, result)
    return result


def _workspace(data: Path, work: Path) -> None:
    from hiddenemo.data.ingest import imigue_workspace, summary_lines

    table, _, written = imigue_workspace(data / "labels_20200831.csv", data / "splits.csv", work, protocol="miga",
                                         videos=data / "videos", openpose=data / "openpose")
    print("\n".join(summary_lines(table, work, written)))


def _teach(work: Path) -> None:
    from hiddenemo.teacher import policy, runner
    from hiddenemo.teacher.config import VlmConfig
    from hiddenemo.teacher.registry import make_teacher

    teacher = make_teacher("behaviour", work, VlmConfig(), "rules")
    runner.run(work, teacher, "behaviour", runner.manifest_videos(work, None))
    print(policy.format_report(policy.teacher_report(work, "behaviour")))


def _train(work: Path, run: str, config: DemoConfig) -> None:
    from hiddenemo.train.session import train_with
    from hiddenemo.train.config import load_train_config

    train_with(work, run, load_train_config([config.train_config], {"seed": config.seed, "workers": config.workers}))


def _predict_stage1(work: Path, run: str) -> None:
    from hiddenemo.rundir import Run
    from hiddenemo.train.run import predict_run

    for modality in Run(work, run).config.model.modalities:
        predict_run(work, run, split="test", model=f"stage1/{modality}")


def held_out_table(work: Path, run: str, target_labels: Path) -> pd.DataFrame:
    """Teacher vs each stage-1 modality vs the fused student on the target videos, scored with the
    withheld labels (read here, after everything is trained and predicted, and only to report)."""
    import pandas as pd

    from hiddenemo.data.workspace import Workspace
    from hiddenemo.rundir import Run
    from hiddenemo.teacher.store import read_verdicts

    ws, trained = Workspace(work), Run(work, run)
    truth = pd.read_csv(target_labels, dtype={"video_id": str})
    truth["y"] = (truth["win_or_lose"].str.lower() == ws.positive.lower()).astype(int)
    rows = []

    verdicts = read_verdicts(work, "behaviour")
    teacher = pd.DataFrame({"video_id": list(verdicts), "p_positive": [v.p_positive for v in verdicts.values()]})
    rows.append(_score("teacher (behaviour rules)", teacher, _teacher_threshold(ws, teacher), truth))
    for modality, predicted in trained.modality_predictions().items():
        rows.append(_score(f"stage 1: {modality} alone", predicted.table, predicted.threshold, truth))
    student = trained.predictions()
    rows.append(_score("student: fused, stage 2", student.table, student.threshold, truth))
    return pd.DataFrame(rows)


def _teacher_threshold(ws, teacher: pd.DataFrame) -> float:
    """The teacher gets the students' rule: the threshold that maximises balanced accuracy on the
    labeled training videos (which the teacher never learnt from, so this is fair to it)."""
    from hiddenemo.train.config import SelectionConfig
    from hiddenemo.train.selection import choose_threshold

    labeled, _ = ws.training_split()                                   # label 1 = positive
    train = labeled.merge(teacher, on="video_id")
    return choose_threshold(train["p_positive"].to_numpy(float), train["label"].to_numpy(),
                            SelectionConfig(threshold="balanced"))["threshold"]


def _score(name: str, preds: pd.DataFrame, threshold: float, truth: pd.DataFrame) -> dict:
    from hiddenemo.eval.bootstrap import bootstrap_metrics

    both = truth.merge(preds[["video_id", "p_positive"]], on="video_id", how="left")
    answered = both["p_positive"].notna()
    both = both[answered]
    ci = bootstrap_metrics(both["y"].to_numpy(), both["p_positive"].to_numpy(dtype=float), threshold,
                           n_boot=1000, seed=0)
    row = {"model": name, "n": int(answered.sum()), "threshold": round(threshold, 3)}
    for metric in ("accuracy", "balanced_accuracy", "auroc"):
        row[metric] = ci["ci"][metric]["estimate"]
        row[f"{metric}_ci"] = (ci["ci"][metric]["low"], ci["ci"][metric]["high"])
    return row


def print_summary(table: pd.DataFrame, result: dict) -> None:
    print("\nHeld-out target videos (labels withheld from every step, scored only here):\n")
    print(f"| {'model':34} | {'n':>3} | {'accuracy':>20} | {'balanced acc.':>20} | {'AUROC':>20} |")
    print(f"|{'-' * 36}|{'-' * 5}|{'-' * 22}|{'-' * 22}|{'-' * 22}|")
    for row in table.to_dict(orient="records"):
        cells = [f"{row[m]:.3f} [{row[m + '_ci'][0]:.2f}, {row[m + '_ci'][1]:.2f}]"
                 for m in ("accuracy", "balanced_accuracy", "auroc")]
        print(f"| {row['model']:34} | {row['n']:>3} | " + " | ".join(f"{c:>20}" for c in cells) + " |")
    teacher, student = table.iloc[0], table.iloc[-1]
    margin = student["balanced_accuracy"] - teacher["balanced_accuracy"]
    verdict = "beat" if margin > 0 else "tied with" if margin == 0 else "did NOT beat"
    print(f"\nWeak to strong: the student {verdict} its teacher on balanced accuracy ({margin:+.3f}; "
          f"AUROC {student['auroc'] - teacher['auroc']:+.3f}); with {int(student['n'])} held-out videos the "
          "intervals are wide — see the report for the cross-validated figures.")
    total = sum(result["timings_s"].values())
    print(f"Total time {total / 60:.1f} min; report: {result['report']}")
    from hiddenemo.export.bundle import ModelDir, apply_command, subjects_hint

    model = ModelDir(Path(result["model"]))
    hint = subjects_hint(model.description)
    print(f"\nThe student is exported to {model.path} (model card: README.md there). Score a new video with it:\n\n"
          f"    {apply_command(model.path, model.description, 'your_video.mp4')}\n\n"
          "(MediaPipe keypoints stand in for the OpenPose JSON the demo's videos come with; "
          + (f"{hint}; " if hint else "") + "see docs/using-a-model.md)")
