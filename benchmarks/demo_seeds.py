"""The demo over many seeds: student against teacher on each seed's held-out videos, and the margins'
mean, spread and count above zero per group of seeds.

One held-out set is about 30 videos of about 9 people, so one seed's margin moves by about ±0.2;
conclusions about the method need many seeds. Make the demos first, one output folder per seed, then
point this at them (it reads what each demo recorded in `work/runs/demo-seed<S>/demo.json`):

    for s in 0 1 2 3 4 5; do hiddenemo demo --out demo-$s --seed $s; done
    python benchmarks/demo_seeds.py demo-*
    python benchmarks/demo_seeds.py demo-* --groups 0-2 3-5
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

TEACHER, STUDENT = "teacher (behaviour rules)", "student: fused, stage 2"


def seed_row(out: Path) -> dict:
    """Teacher and student held out, from one demo's output folder."""
    records = sorted((out / "work" / "runs").glob("demo-seed*/demo.json"))
    if len(records) != 1:
        raise SystemExit(f"{out}: expected one work/runs/demo-seed<S>/demo.json, found {len(records)}")
    demo = json.loads(records[0].read_text())
    held = {r["model"]: r for r in demo["held_out"]}
    row = {"seed": int(demo["seed"]), "n": held[STUDENT]["n"]}
    for who, model in (("teacher", TEACHER), ("student", STUDENT)):
        row[f"{who}_bal_acc"] = held[model]["balanced_accuracy"]
        row[f"{who}_auroc"] = held[model]["auroc"]
    row["margin_bal_acc"] = row["student_bal_acc"] - row["teacher_bal_acc"]
    row["margin_auroc"] = row["student_auroc"] - row["teacher_auroc"]
    return row


def summary(rows: pd.DataFrame) -> str:
    parts = []
    for metric in ("bal_acc", "auroc"):
        margin = rows[f"margin_{metric}"]
        spread = f" ± {margin.std(ddof=1):.3f}" if len(rows) > 1 else ""
        parts.append(f"{metric} margin {margin.mean():+.3f}{spread} (student above on {(margin > 0).sum()} of "
                     f"{len(rows)}; student {rows[f'student_{metric}'].mean():.3f}, teacher "
                     f"{rows[f'teacher_{metric}'].mean():.3f})")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outs", nargs="+", type=Path, help="demo output folders (hiddenemo demo --out)")
    parser.add_argument("--groups", nargs="*", default=[], help="seed ranges to summarise apart, e.g. 0-2 3-11")
    args = parser.parse_args()
    rows = pd.DataFrame([seed_row(out) for out in args.outs]).sort_values("seed")
    print(rows.round(3).to_string(index=False))
    for group in args.groups:
        low, _, high = group.partition("-")
        part = rows[rows["seed"].between(int(low), int(high or low))]
        print(f"seeds {group}: {summary(part)}")
    print(f"all {len(rows)} seeds: {summary(rows)}")


if __name__ == "__main__":
    main()
