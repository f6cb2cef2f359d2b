"""The text-only path on the constructed example of tests/text_example.py, with the CLI's defaults:
`dataset table` + `teach --teacher import` + `embed` + `train --model.modalities '[text]'` + `predict`,
then the student against a TF-IDF + logistic regression on the same texts, both scored on the
target videos against labels kept outside the workspace, and cross-validated on the labeled ones.

    python benchmarks/text_vs_tfidf.py --out /tmp/text-example [--seed 0] [--probs]

Prints the figures with the CPU model and the wall time of training. The example is constructed
(paraphrased cue phrases; docstring of tests/text_example.py): its figures say that the pipeline
works, not how real teacher texts fare.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probs", action="store_true", help="the teacher file gives p_<class> too (pseudo-labels)")
    args = parser.parse_args()

    import pandas as pd
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score
    from text_example import texts_example

    from hiddenemo.cli import main as cli
    from hiddenemo.data.manifest import DatasetInfo
    from hiddenemo.eval.baselines import baseline_predictions

    shutil.rmtree(args.out, ignore_errors=True)
    example = texts_example(args.out / "example", seed=args.seed, probs=args.probs)
    work = args.out / "work"
    pseudo = ["--pseudo.teacher", "import"] if args.probs else []
    steps = [["dataset", "table", "--labels", str(example["labels"]), "--out", str(work)],
             ["teach", "--work", str(work), "--teacher", "import", "--from", str(example["teacher"])],
             ["embed", "--work", str(work), "--teacher", "import"],
             ["train", "--work", str(work), "--model.modalities", "[text]", "--seed", str(args.seed), *pseudo],
             ["predict", "--work", str(work)],
             ["evaluate", "--work", str(work), "--baselines", "[text,tfidf]", "--seed", str(args.seed)]]
    seconds = {}
    for step in steps:
        start = time.perf_counter()
        if cli(step) != 0:
            raise SystemExit(f"failed: hiddenemo {' '.join(step)}")
        seconds[step[0]] = time.perf_counter() - start

    positive = DatasetInfo.load(work).positive
    truth = example["truth"]

    def scored(p: pd.DataFrame, threshold: float) -> str:
        y = [truth[v] == positive for v in p["video_id"]]
        return (f"AUROC {roc_auc_score(y, p['p_positive']):.3f}, balanced accuracy "
                f"{balanced_accuracy_score(y, p['p_positive'] >= threshold):.3f}")

    run = work / "runs" / "default"
    student = pd.read_csv(run / "predictions.csv", dtype={"video_id": str})
    selection = json.loads((run / "selection.json").read_text())
    threshold = selection[selection["final"]["model"]]["threshold"]["threshold"]
    tfidf = baseline_predictions(work, "tfidf", seed=args.seed)
    tfidf_target = tfidf[(tfidf["baseline"] == "logistic") & (tfidf["split"] == "test")]
    prior = float((tfidf[tfidf["split"] == "train"]["label"]).mean())
    evaluation = json.loads((run / "evaluation.json").read_text())
    cv = lambda key: evaluation["baselines"][key]["logistic"]["cross_validated"]["at 0.5"]["metrics"]["auroc"]
    model_cv = evaluation["model"]["cross_validated"]["stage2"]["metrics"]["auroc"]
    print(f"text-only example, seed {args.seed}, {len(truth)} target videos ({'with' if args.probs else 'no'} "
          f"pseudo-labels: n_pseudo {selection['stage2'].get('n_pseudo', 0)}); CPU: {cpu_model()}")
    print(f"  target, student (stage 2, its threshold {threshold:.3f}):  {scored(student, threshold)}")
    print(f"  target, TF-IDF + logistic (balanced threshold {prior:.3f}): {scored(tfidf_target, prior)}")
    print(f"  cross-validated AUROC on the labeled videos: student {model_cv:.3f}, TF-IDF {cv('tfidf'):.3f}, "
          f"logistic on the embeddings {cv('text'):.3f}")
    print("  seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))


if __name__ == "__main__":
    main()
