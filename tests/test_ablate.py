"""`hiddenemo ablate`: a study runs every variant x seed as ordinary training runs, tabulates mean ±
std with a paired test against the reference, and resumes without retraining."""
from __future__ import annotations

import pandas as pd
import pytest
import yaml
from train_fixtures import TINY, study_workspace

from hiddenemo.ablate import STUDIES, run_study
from hiddenemo.cli import main


@pytest.fixture
def workspace(tmp_path):
    return study_workspace(tmp_path, {**TINY, "pseudo": {"teacher": "rules"}}, n_train=18)


def test_frame_encoder_study_tabulates_and_resumes(workspace, capsys):
    work, base = workspace
    table = run_study(work, "frame-encoders", seeds=2, base_config=base)
    assert list(table["variant"]) == ["dinov2+transformer", "16-frame clip (X-CLIP stand-in)"]
    assert (table["seeds"] == 2).all() and table["auroc"].between(0, 1).all()
    assert table.loc[0, "vs_reference"] == "reference" and "AUROC" in table.loc[1, "vs_reference"] and "p=" in table.loc[1, "vs_reference"]
    markdown = (work / "ablations" / "frame-encoders.md").read_text()
    assert "± " in markdown and "16-frame clip" in markdown
    runs = pd.read_csv(work / "ablations" / "frame-encoders_runs.csv")
    assert len(runs) == 4 and runs["model"].eq("stage1/frames").all()
    # The clip variant really sampled 16 frames: its overlay reached the run's config.
    clip = yaml.safe_load((work / "runs" / runs.loc[2, "run"] / "config.yaml").read_text())
    assert clip["sampling"]["n_frames"] == 16 and clip["model"]["encoders"]["frames"] == "frames-clip16"

    stamps = {p: p.stat().st_mtime_ns for p in (work / "runs").rglob("done.json")}
    capsys.readouterr()
    assert main(["ablate", "--work", str(work), "--study", "frame-encoders", "--seeds", "2", "--base", str(base)]) == 0
    assert "== ablate" not in capsys.readouterr().out                      # nothing retrained
    assert stamps == {p: p.stat().st_mtime_ns for p in (work / "runs").rglob("done.json")}


def test_stages_study_reads_every_model_of_one_run_per_seed(workspace):
    work, base = workspace
    base.write_text(yaml.safe_dump({**TINY, "model": {**TINY["model"], "modalities": ["text", "events"]},
                                    "pseudo": {"teacher": "rules"}}))
    table = run_study(work, "stages", seeds=2, base_config=base)
    assert list(table["variant"]) == ["stage 1 text", "stage 1 events", "stage 2"]
    runs = pd.read_csv(work / "ablations" / "stages_runs.csv")
    assert runs["run"].nunique() == 2 and set(runs["model"]) == {"stage1/text", "stage1/events", "stage2"}
    assert table["seeds_t_p"].iloc[:2].between(0, 1).all() and "paired t-test" in (work / "ablations" / "stages.md").read_text()


def test_strategy_rows_follow_the_modalities():
    names = [name for name, _, _ in STUDIES["strategy"](["text", "events"])]
    assert "+ offsets" not in names and names[0] == "fused, no pretraining"
    with_pose = STUDIES["strategy"](["pose", "text"])
    offsets = {name: overlay.get("sampling", {}).get("offsets") for name, overlay, _ in with_pose}
    assert offsets["fused, no pretraining"] == [] and offsets["+ offsets"] is None
    assert len(STUDIES["pose-encoders"]([])) == 8


def test_unknown_study_is_a_clear_error(workspace):
    from hiddenemo.errors import UserError
    with pytest.raises(UserError, match="unknown study"):
        run_study(workspace[0], "nope", 1, None)


def test_every_train_config_field_is_a_train_option():
    """Study overlays set TrainConfig fields through `hiddenemo train --config`: each must be an option."""
    import dataclasses
    import inspect

    from hiddenemo.commands.train import train
    from hiddenemo.train.config import TrainConfig

    assert {f.name for f in dataclasses.fields(TrainConfig)} <= set(inspect.signature(train).parameters)
