"""A text-only workspace: `dataset table` (labels alone, no videos), `teach --teacher import` (teacher
outputs written elsewhere, checked row by row), then `embed`, `train --model.modalities '[text]'`,
`predict` and `evaluate --baselines '[tfidf]'` on a small example a script writes (tests/text_example.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hiddenemo.cli import main
from hiddenemo.data.manifest import DatasetInfo, read_manifest
from hiddenemo.errors import UserError
from hiddenemo.teacher.config import PseudoLabelPolicy
from hiddenemo.teacher.policy import pseudo_labels
from hiddenemo.teacher.schema import Verdict
from hiddenemo.teacher.store import read_all, read_verdicts, verdict_path
from text_example import texts_example

FAST = ["--stage1.epochs", "3", "--stage2.epochs", "3", "--stage2.lr", "0.001", "--selection.folds", "3", "--sampling.votes", "1",
        "--threads", "1"]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def table(tmp_path: Path, csv: str, *extra: str) -> Path:
    work = tmp_path / "work"
    assert main(["dataset", "table", "--labels", str(write(tmp_path / "labels.csv", csv)), "--out", str(work),
                 *extra]) == 0
    return work


def teach_import(work: Path, path: Path, *extra: str) -> int:
    return main(["teach", "--work", str(work), "--teacher", "import", "--from", str(path), *extra])


# ------------------------------------------------------------------------------------------ table

def test_table_builds_a_workspace_without_videos(tmp_path, capsys):
    work = table(tmp_path, "video_id,label,subject_id\na1,calm,s1\na2,tense,s1\nb1,calm,s2\nb2,,s2\nc1,calm,\n")
    info, df = DatasetInfo.load(work), read_manifest(work).set_index("video_id")
    assert info.classes == ["calm", "tense"] and info.positive == "tense"        # the folder rule: the rarer
    assert df["label"].tolist()[:3] == [0, 1, 0] and pd.isna(df.loc["b2", "label"])
    assert df["split"].tolist() == ["train", "train", "train", "test", "train"]  # blank label: a target video
    assert df["path"].isna().all() and (df["source"] == "table").all()
    assert "no video files" in capsys.readouterr().out


def test_table_with_three_classes_and_splits(tmp_path):
    work = table(tmp_path, "video_id,label,split\nv1,sad,train\nv2,calm,train\nv3,tense,val\nv4,,test\n")
    info = DatasetInfo.load(work)
    assert info.classes == ["calm", "sad", "tense"] and info.positive is None
    assert read_manifest(work)["split"].tolist() == ["train", "train", "val", "test"]


@pytest.mark.parametrize("csv, message", [
    ("video_id\nv1\n", r"lacks column\(s\) \['label'\]"),
    ("video_id,label\nv1,a\nv2,b\nv1,a\n", r"'v1' \(lines 2, 4\)"),
    ("video_id,label\nv1,a\nmy video,b\n", "line 3: 'my video' -> my_video"),
    ("video_id,label\nv1,a\nv2,A\n", "spells a class in more than one way"),
    ("video_id,label\n", "has no rows"),
])
def test_table_errors_name_the_row(tmp_path, csv, message):
    with pytest.raises(UserError, match=message):
        from hiddenemo.data.table import table_workspace
        table_workspace(write(tmp_path / "labels.csv", csv))


def test_safe_ids_keep_the_written_id_for_the_teacher_file(tmp_path):
    work = table(tmp_path, "video_id,label\nInterview (1),a\nInterview (2),b\nv3,a\nv4,b\n", "--safe_ids", "true")
    df = read_manifest(work).set_index("video_id")
    assert df.loc["Interview_1", "source_id"] == "Interview (1)"
    file = write(tmp_path / "t.csv", "video_id,text\nInterview (1),one\nInterview_2,two\n")   # either spelling
    assert teach_import(work, file) == 0
    assert sorted(read_verdicts(work, "import")) == ["Interview_1", "Interview_2"]


# ----------------------------------------------------------------------------------------- import

@pytest.fixture
def three(tmp_path) -> Path:
    return table(tmp_path, "video_id,label\nv1,calm\nv2,sad\nv3,tense\nv4,\nv5,\n")


def test_import_three_classes_with_probabilities(three, tmp_path):
    file = write(tmp_path / "t.csv", "video_id,text,p_calm,p_sad,p_tense\nv1,sits still,0.7,0.2,0.1\n"
                                     "v4,slumps,0.1,0.8,0.1\nv5,fidgets,,,\n")
    assert teach_import(three, file) == 0
    verdicts = read_verdicts(three, "import")
    assert verdicts["v4"].probs == {"calm": 0.1, "sad": 0.8, "tense": 0.1} and verdicts["v4"].label == "sad"
    assert verdicts["v4"].p_positive is None                     # three classes: no single positive one
    assert verdicts["v5"].probs is None and verdicts["v5"].text == "fidgets"
    assert verdicts["v1"].text_variant("verdict_free") == "sits still"
    assert verdicts["v4"].class_probs(["calm", "sad", "tense"]) == {"calm": 0.1, "sad": 0.8, "tense": 0.1}


def test_import_labels_only_give_one_hot_probabilities(three, tmp_path):
    file = tmp_path / "t.jsonl"
    file.write_text('{"video_id": "v4", "text": "slumps", "label": "sad"}\n\n{"video_id": "v5", "text": "fidgets"}\n')
    assert teach_import(three, file) == 0
    verdicts = read_verdicts(three, "import")
    assert verdicts["v4"].probs == {"calm": 0.0, "sad": 1.0, "tense": 0.0} and verdicts["v5"].label is None


@pytest.mark.parametrize("name, content, message", [
    ("t.csv", "video_id,text\nv1,a\nv9,b\n", "line 3: video id 'v9' is not in the workspace"),
    ("t.csv", "video_id,text,label\nv1,a,calm\nv2,b,angry\n", "line 3: label 'angry' is not a class"),
    ("t.csv", "video_id,text,p_calm,p_sad,p_tense\nv1,a,0.5,0.4,0.4\n", "line 2: probabilities .* sum to 1.3000, not 1"),
    ("t.csv", "video_id,text,p_calm,p_sad,p_tense\nv1,a,1.5,-0.5,0\n", r"must each lie in \[0, 1\]"),
    ("t.csv", "video_id,text,p_calm,p_sad,p_tense\nv1,a,x,0.5,0.5\n", "not all numbers"),
    ("t.csv", "video_id,text\nv1,a\nv2,  \n", "line 3: video 'v2' has an empty text"),
    ("t.csv", "video_id,text\nv1,a\nv1,b\n", "line 3: video 'v1' again \\(first on line 2\\)"),
    ("t.csv", "video_id,text,p_calm,p_happy\nv1,a,0.5,0.5\n", r"unknown class\(es\) \['happy'\]"),
    ("t.csv", "video_id,label\nv1,calm\n", r"lacks column\(s\) \['text'\]"),
    ("t.jsonl", '{"video_id": "v1", "text": "a"}\n{"video_id": "v2", "text": ""}\n', "line 2: video 'v2' has an empty text"),
    ("t.jsonl", '{"video_id": "v1", "text": "a"}\nnot json\n', "line 2 is not JSON"),
])
def test_import_errors_name_the_row_and_write_nothing(three, tmp_path, name, content, message):
    from hiddenemo.teacher.registry import make_teacher

    with pytest.raises(UserError, match=message):
        make_teacher("import", three, source=write(tmp_path / name, content))
    assert not verdict_path(three, "import").exists()


def test_import_needs_a_file(three, capsys):
    assert main(["teach", "--work", str(three), "--teacher", "import"]) == 2
    assert "pass --from FILE" in capsys.readouterr().err


def test_reimport_is_cached_and_a_changed_row_is_written_anew(three, tmp_path, capsys):
    file = write(tmp_path / "t.csv", "video_id,text\nv1,same words\nv2,same words\n")
    assert teach_import(three, file) == 0
    assert "asked 2 (2 ok" in capsys.readouterr().out       # two videos with one text are two answers
    assert teach_import(three, file) == 0
    assert "asked 0" in capsys.readouterr().out and len(read_all(three, "import")) == 2
    write(file, "video_id,text\nv1,same words\nv2,other words\n")
    assert teach_import(three, file) == 0
    assert read_verdicts(three, "import")["v2"].text == "other words" and len(read_all(three, "import")) == 3


def test_pseudo_labels_only_when_the_file_gave_probabilities(tmp_path):
    work = table(tmp_path, "video_id,label\nv1,calm\nv2,tense\nv3,\nv4,\n")
    assert teach_import(work, write(tmp_path / "a.csv", "video_id,text\nv1,a\nv2,b\nv3,c\nv4,d\n"),
                        "--teacher_id", "texts") == 0
    assert pseudo_labels(work, "texts", PseudoLabelPolicy()).empty
    assert teach_import(work, write(tmp_path / "b.csv", "video_id,text,p_calm,p_tense\nv3,c,0.2,0.8\nv4,d,0.9,0.1\n"),
                        "--teacher_id", "probs") == 0
    table_ = pseudo_labels(work, "probs", PseudoLabelPolicy()).set_index("video_id")
    assert table_["target"].to_dict() == {"v3": 1.0, "v4": 0.0}          # positive = tense (index 1)


def test_two_class_verdicts_read_and_write_as_before():
    old = ('{"video_id":"a","teacher_id":"behaviour","status":"ok","reason":null,"p_positive":0.3,"label":"lose",'
           '"observations":[],"text":"t","text_verdict_free":"t","model":"keypoint-rules","prompt_version":"",'
           '"input_tokens":0,"output_tokens":0,"thinking_tokens":0,"cost_usd":0.0,"raw":"","cache_key":"k",'
           '"seconds":0.0,"created":1.0}')
    verdict = Verdict.model_validate_json(old)
    assert verdict.model_dump_json() == old                               # no `probs` key in a binary line
    assert verdict.class_probs(["lose", "win"]) == {"lose": 0.7, "win": 0.3}


# ------------------------------------------------------------------------------------- end to end

def run_example(tmp_path: Path, probs: bool, *train_args: str):
    example = texts_example(tmp_path / "example", n_train=40, n_target=30, probs=probs)
    work = tmp_path / "work"
    assert main(["dataset", "table", "--labels", str(example["labels"]), "--out", str(work)]) == 0
    assert teach_import(work, example["teacher"]) == 0
    assert main(["embed", "--work", str(work), "--teacher", "import"]) == 0
    assert main(["train", "--work", str(work), "--model.modalities", "[text]", *FAST, *train_args]) == 0
    assert main(["predict", "--work", str(work)]) == 0
    return work, example


def target_auroc(predictions: pd.DataFrame, truth: dict, positive: str) -> float:
    from sklearn.metrics import roc_auc_score

    y = [truth[v] == positive for v in predictions["video_id"]]
    return roc_auc_score(y, predictions["p_positive"])


def test_text_only_pipeline_takes_no_pseudo_labels_from_texts_alone(tmp_path, capsys):
    work, example = run_example(tmp_path, False, "--pseudo.teacher", "import")
    selection = json.loads((work / "runs" / "default" / "selection.json").read_text())
    assert selection["stage2"]["n_pseudo"] == 0 and selection["transductive"] == []   # texts only: none taken
    predictions = pd.read_csv(work / "runs" / "default" / "predictions.csv", dtype={"video_id": str})
    assert len(predictions) == 30 and predictions["p_positive"].between(0, 1).all()
    positive = DatasetInfo.load(work).positive
    assert target_auroc(predictions, example["truth"], positive) > 0.6      # scored against labels kept apart

    capsys.readouterr()
    assert main(["evaluate", "--work", str(work), "--baselines", "[text,tfidf]", "--n_boot", "100"]) == 0
    result = json.loads((work / "runs" / "default" / "evaluation.json").read_text())
    assert set(result["baselines"]) == {"text", "tfidf"}
    assert "logistic (tfidf)" in capsys.readouterr().out
    from hiddenemo.eval.baselines import baseline_predictions
    tfidf = baseline_predictions(work, "tfidf", n_folds=3)
    target = tfidf[(tfidf["baseline"] == "logistic") & (tfidf["split"] == "test")]
    assert 0.0 <= target_auroc(target, example["truth"], positive) <= 1.0


def test_text_only_pipeline_takes_pseudo_labels_from_imported_probabilities(tmp_path):
    work, _ = run_example(tmp_path, True, "--pseudo.teacher", "import", "--stage1_enabled", "false")
    selection = json.loads((work / "runs" / "default" / "selection.json").read_text())
    assert selection["stage2"]["n_pseudo"] == 30                             # every target video
    assert "pseudo-labels of 30 unlabeled target videos from teacher import" in selection["transductive"][0]


def test_three_class_text_workspace_end_to_end_with_soft_pseudo_labels(tmp_path):
    example = texts_example(tmp_path / "example", classes=("calm", "sad", "tense"), n_train=18, n_target=6, probs=True)
    work = tmp_path / "work"
    assert main(["dataset", "table", "--labels", str(example["labels"]), "--out", str(work)]) == 0
    assert teach_import(work, example["teacher"]) == 0
    verdicts = read_verdicts(work, "import")
    assert len(verdicts) == 24 and all(set(v.probs) == {"calm", "sad", "tense"} for v in verdicts.values())
    assert main(["embed", "--work", str(work), "--teacher", "import"]) == 0
    assert len(list(work.glob("store/*/text.minilm.npy"))) == 24
    assert main(["train", "--work", str(work), "--model.modalities", "[text]", "--pseudo.teacher", "import",
                 "--stage1_enabled", "false", *FAST]) == 0
    selection = json.loads((work / "runs" / "default" / "selection.json").read_text())
    assert selection["stage2"]["n_pseudo"] == 6                      # the teacher's class probabilities, soft
    assert main(["predict", "--work", str(work)]) == 0
    predictions = pd.read_csv(work / "runs" / "default" / "predictions.csv", dtype={"video_id": str})
    assert {"p_calm", "p_sad", "p_tense"} <= set(predictions.columns) and len(predictions) == 6
