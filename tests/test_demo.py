"""`hiddenemo demo` end to end at toy size: every stage runs, the report exists, and the held-out
table scores teacher, each stage-1 modality and the student on the target videos only."""
from __future__ import annotations

import json

import yaml

from hiddenemo.cli import main

TOY_TRAINING = {
    "threads": 1,
    "sampling": {"n_pose": 16, "n_frames": 4, "n_events": 8, "offsets": [8], "votes": 2},
    "model": {"modalities": ["pose", "frames", "text"], "dim": 16, "fusion": "late",   # the demo's fusion
              "encoder_args": {"pose": {"frame_dim": 16, "point_hidden": 4, "depth": 1, "heads": 2},
                               "frames": {"model_dim": 16, "depth": 1, "heads": 2}}},
    "stage1": {"epochs": 2, "batch_size": 8},
    "stage2": {"epochs": 1, "batch_size": 8},
    "selection": {"folds": 2},
    "pseudo": {"teacher": "behaviour", "policy": {"calibrate": True, "balanced": True}},
}


def test_demo_runs_every_stage_to_the_report(tmp_path, capsys):
    config = tmp_path / "toy.yaml"
    config.write_text(yaml.safe_dump(TOY_TRAINING))
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--n_videos", "12", "--n_frames", "40", "--frames_every", "10",
            "--train_config", str(config)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    run = out / "work" / "runs" / "demo-seed0"
    assert (run / "report.html").stat().st_size > 10_000
    result = json.loads((run / "demo.json").read_text())
    models = [row["model"] for row in result["held_out"]]
    assert models[0].startswith("teacher") and models[-1].startswith("student")
    assert {"stage 1: pose alone", "stage 1: frames alone", "stage 1: text alone"} <= set(models)
    target = (out / "data" / "target_labels.csv").read_text().count("\n") - 1
    assert all(row["n"] == target for row in result["held_out"])            # the held-out videos, all of them
    assert "Weak to strong: the student" in printed and "its teacher on balanced accuracy" in printed and "report:" in printed
    # Every stage is resumable: a second demo recomputes nothing and prints the same table.
    assert main(args) == 0
    assert json.loads((run / "demo.json").read_text())["held_out"] == result["held_out"]
