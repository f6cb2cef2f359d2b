"""Every YAML file under configs/ parses against the training dataclasses, through the real CLI parser
and through `from_dict` (which refuses unknown keys)."""
from __future__ import annotations

import contextlib
import os
import io
from pathlib import Path

import pytest
import yaml

from hiddenemo.cli import main
from hiddenemo.errors import UserError
from hiddenemo.train.build import check_encoder_args
from hiddenemo.train.config import ModelConfig, TrainConfig, from_dict, load_train_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_there_are_configs():
    assert {"paper.yaml", "cpu.yaml", "imigue_events.yaml", "demo.yaml"} <= {p.name for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parses(path, tmp_path):
    config = from_dict(TrainConfig, yaml.safe_load(path.read_text()))
    assert set(config.model.modalities) <= {"pose", "frames", "text", "events"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        main(["train", "--work", str(tmp_path), "--config", str(path), "--print_config"])
    assert done.value.code in (0, None)
    printed = yaml.safe_load(out.getvalue())
    assert printed["model"]["modalities"] == config.model.modalities
    assert printed["sampling"] == yaml.safe_load(yaml.safe_dump(config.sampling.__dict__))


def test_paper_sizes():
    paper = from_dict(TrainConfig, yaml.safe_load((CONFIGS[0].parent / "paper.yaml").read_text()))
    assert (paper.sampling.n_pose, paper.sampling.n_frames, paper.model.dim) == (4000, 800, 256)
    assert paper.sampling.offsets == [8, 16, 24] and paper.sampling.min_frame_gap == 5


def test_unknown_keys_are_refused():
    with pytest.raises(ValueError, match="no field"):
        from_dict(TrainConfig, {"stage1": {"epoch": 3}})
    with pytest.raises(ValueError, match=r"PseudoLabelPolicy has no field\(s\) \['wieght'\]; known: .*'weight'"):
        from_dict(TrainConfig, {"pseudo": {"policy": {"wieght": 0.5}}})


def test_the_pseudo_label_policy_is_a_dataclass_on_the_command_line(tmp_path, capsys):
    """Its fields are in `train --help`, a YAML `policy:` sets them, and a misspelled one stops the parse."""
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--pseudo.policy.min_confidence" in capsys.readouterr().out
    overlay = tmp_path / "soft.yaml"
    overlay.write_text("pseudo:\n  policy: {mode: soft, weight: 0.5}\n")
    config = load_train_config([overlay])
    assert (config.pseudo.policy.mode, config.pseudo.policy.weight, config.pseudo.policy.threshold) == ("soft", 0.5, 0.5)
    overlay.write_text("pseudo:\n  policy: {wieght: 0.5}\n")
    with pytest.raises(SystemExit):
        main(["train", "--work", str(tmp_path), "--config", str(overlay)])
    assert "pseudo.policy.wieght" in capsys.readouterr().err


def test_unknown_encoder_args_name_the_valid_ones():
    """Checked before any data is read: a key that is neither a modality nor an encoder, and an option the
    encoder (or a candidate the modality's arguments also reach) does not have."""
    check_encoder_args(ModelConfig(encoder_args={"pose": {"depth": 2}, "events-stats": {"hidden": 8}}))
    with pytest.raises(UserError, match=r"\['poze'\] names neither a modality nor an encoder; keys are a modality \(pose"):
        check_encoder_args(ModelConfig(encoder_args={"poze": {"depth": 2}}))
    with pytest.raises(UserError, match=r"encoder 'pose-mlp' has no option\(s\) \['depht'\]; its options are: .*depth"):
        check_encoder_args(ModelConfig(encoder_args={"pose": {"depht": 2}}))
    with pytest.raises(UserError, match=r"encoder_args.pose: encoder 'pose-stats' has no option\(s\) \['depth'\]"):
        check_encoder_args(ModelConfig(encoder_args={"pose": {"depth": 2}}, candidates={"pose": ["pose-stats"]}))


def test_progress_bars_are_throttled_when_stderr_is_not_a_terminal(monkeypatch):
    """Under pytest stderr is captured, as in a log file: bars redraw at most every 30 s, unless the
    user set TQDM_MININTERVAL themselves."""
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert os.environ["TQDM_MININTERVAL"] == "30"
    monkeypatch.setenv("TQDM_MININTERVAL", "5")
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert os.environ["TQDM_MININTERVAL"] == "5"


def test_help_shows_whole_descriptions():
    """The list of subcommands shows each summary line whole; a subcommand's --help adds the rest."""
    def help_of(*argv):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            main([*argv, "--help"])
        return " ".join(out.getvalue().split())
    listing = help_of()
    assert "train Train stage 1 (each modality alone), then stage 2 (fused, with the teacher's pseudo-labels)." in listing
    assert "picks the epochs" not in listing
    train_help = help_of("train")
    assert "k-fold cross-validation on the labeled training videos picks the epochs and the threshold." in train_help
    assert "the threshold is chosen again on the averaged out-of-fold predictions" in help_of("ensemble")


@pytest.mark.parametrize("form", ["separate", "equals"])
def test_config_paths_of_the_docs_work_anywhere(tmp_path, monkeypatch, form):
    """`--config configs/cpu.yaml`, run where no configs/ folder is (a pip install), takes the copy
    inside the package; a file that does exist is always the one used."""
    monkeypatch.chdir(tmp_path)
    argv = ["--config", "configs/cpu.yaml"] if form == "separate" else ["--config=configs/cpu.yaml"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["train", "--work", str(tmp_path), *argv, "--print_config"])
    expected = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "cpu.yaml").read_text())
    assert yaml.safe_load(out.getvalue())["sampling"]["n_pose"] == expected["sampling"]["n_pose"]
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "cpu.yaml").write_text("seed: 7\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["train", "--work", str(tmp_path), *argv, "--print_config"])
    assert yaml.safe_load(out.getvalue())["seed"] == 7
