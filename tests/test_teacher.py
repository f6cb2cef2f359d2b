"""Verdict schema, cache and log, prompts, pseudo-label policy, report, the annotations teacher,
text embeddings, and the annotations teacher on the real iMiGUE annotation file."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from hiddenemo.cli import main
from hiddenemo.data.manifest import DatasetInfo, write_manifest
from hiddenemo.data.store import Store
from hiddenemo.errors import UserError
from hiddenemo.teacher import prompts
from hiddenemo.teacher.annotations import render
from hiddenemo.teacher.policy import PseudoLabelPolicy, pseudo_labels, teacher_report
from hiddenemo.teacher.schema import Verdict, failed
from hiddenemo.teacher.store import append_verdict, cache_key, latest_by_key, read_all, read_verdicts, verdict_path


def v(vid: str, p: float | None, key: str = "", ok: bool = True, teacher: str = "t") -> Verdict:
    if not ok:
        return failed(vid, teacher, "refused", cache_key=key)
    return Verdict(video_id=vid, teacher_id=teacher, p_positive=p, label="win" if p >= 0.5 else "lose",
                   cache_key=key, text=f"text of {vid}", text_verdict_free=f"cues of {vid}")


def test_schema_rejects_bad_probability_and_failures_carry_no_label():
    with pytest.raises(ValidationError):
        Verdict(video_id="a", teacher_id="t", p_positive=1.2)
    f = failed("a", "t", "truncated answer")
    assert f.status == "failed" and f.p_positive is None and f.label is None and not f.ok
    assert Verdict.model_validate_json(v("a", 0.7).model_dump_json()).p_positive == 0.7
    with pytest.raises(ValueError, match="variant"):
        v("a", 0.7).text_variant("leaky")


def test_log_is_append_only_survives_a_torn_line_and_ok_beats_failure(work):
    append_verdict(work, v("a", 0.2, key="k1"))
    append_verdict(work, v("b", None, key="k2", ok=False))
    append_verdict(work, v("b", 0.9, key="k2"))
    append_verdict(work, v("b", None, key="k2", ok=False))       # a later failure does not hide the answer
    with open(verdict_path(work, "t"), "a") as f:
        f.write('{"video_id": "c", "teacher_id": "t", "p_posi')  # interrupted write
    assert len(read_all(work, "t")) == 4
    assert latest_by_key(work, "t")["k2"].ok
    assert {k: x.p_positive for k, x in read_verdicts(work, "t").items()} == {"a": 0.2, "b": 0.9}


def test_cache_key_changes_with_each_input():
    base = dict(content_hash="abc", teacher="gemini", model="m", prompt_version="p1", params={"fps": 1})
    keys = {cache_key(**base)}
    for change in ({"content_hash": "abd"}, {"teacher": "openai"}, {"model": "m2"}, {"prompt_version": "p2"},
                   {"params": {"fps": 2}}):
        keys.add(cache_key(**{**base, **change}))
    assert len(keys) == 6 and cache_key(**base) == cache_key(**base)


def test_prompt_template_names_the_classes_and_schema_is_strict():
    text = prompts.render("cot_reflection_v1", ["calm", "anxious"], "anxious", context="Clip of 2 min.")
    assert '"calm", "anxious"' in text and "$" not in text and "Clip of 2 min." in text
    for step in ("Observe", "Code", "prior rules", "Reflect", "Decide", "scratching"):
        assert step in text
    schema = prompts.answer_schema()
    assert "$ref" not in json.dumps(schema) and "$defs" not in schema

    def closed(node):
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert node["additionalProperties"] is False and set(node["required"]) == set(node["properties"])
            for x in node.values():
                closed(x)
        elif isinstance(node, list):
            for x in node:
                closed(x)
    closed(schema)
    from hiddenemo.errors import UserError
    with pytest.raises(UserError, match="available prompts"):
        prompts.render("nope_v9", ["a", "b"], "b")


def small_workspace(work: Path, labels: list) -> Path:
    rows = [{"video_id": f"v{i}", "label": lab, "split": "train" if pd.notna(lab) else "test"}
            for i, lab in enumerate(labels)]
    write_manifest(work, pd.DataFrame(rows))
    DatasetInfo(name="t", classes=["lose", "win"], positive="win").save(work)
    return work


def test_pseudo_labels_policy(work):
    small_workspace(work, [1, 0, pd.NA, pd.NA, pd.NA, pd.NA, pd.NA])
    for vid, p in (("v0", 0.9), ("v1", 0.1), ("v2", 0.95), ("v3", 0.55), ("v4", 0.2), ("v5", 0.8)):
        append_verdict(work, v(vid, p))
    append_verdict(work, v("v6", None, ok=False))
    hard = pseudo_labels(work, "t", PseudoLabelPolicy())
    assert list(hard["video_id"]) == ["v2", "v3", "v4", "v5"]           # unlabeled only, failure excluded
    assert list(hard["target"]) == [1.0, 1.0, 0.0, 1.0] and set(hard["weight"]) == {1.0}
    soft = pseudo_labels(work, "t", PseudoLabelPolicy(mode="soft", min_confidence=0.7, weight=0.5))
    assert list(soft["video_id"]) == ["v2", "v4", "v5"] and list(soft["target"]) == [0.95, 0.2, 0.8]
    assert set(soft["weight"]) == {0.5}
    bal = pseudo_labels(work, "t", PseudoLabelPolicy(class_balance=True))
    w = dict(zip(bal["video_id"], bal["weight"]))
    assert w["v4"] == pytest.approx(2.0) and w["v2"] == pytest.approx(2 / 3)   # 1 negative vs 3 positives
    assert bal["weight"].mean() == pytest.approx(1.0)
    assert sum(w[x] for x in ("v2", "v3", "v5")) == pytest.approx(w["v4"])
    with pytest.raises(UserError, match="hard"):
        PseudoLabelPolicy(mode="medium")


def test_report_accuracy_auc_coverage(work):
    small_workspace(work, [1, 1, 0, 0, 1, pd.NA])
    for vid, p in (("v0", 0.8), ("v1", 0.3), ("v2", 0.2), ("v3", 0.6), ("v5", 0.5)):
        append_verdict(work, v(vid, p))
    append_verdict(work, v("v4", None, ok=False))
    r = teacher_report(work, "t")
    assert r["n_labeled"] == 5 and r["n_labeled_answered"] == 4 and r["coverage"] == pytest.approx(0.8)
    assert r["accuracy"] == pytest.approx(0.5) and r["auroc"] == pytest.approx(0.75)
    assert r["n_failed"] == 1 and r["n_unlabeled_answered"] == 1


def test_annotations_render_times_person_baseline_and_rules():
    rate = 5.0
    events = np.zeros((300, 3), np.uint8)                     # 60 s
    events[10:20, 0] = 1                                      # moving torso 2.0-4.0 s
    events[50:55, 0] = 1
    events[100:110, 1] = 1                                    # pressing lips 20.0-22.0 s
    names, groups = ["moving torso", "pressing lips", "touching jaw"], ["body", "head", "head-hand"]
    person = pd.Series({"rate:body": np.log1p(2.0), "usual:body": np.log1p(0.5), "rate:head": np.log1p(1.0),
                        "usual:head": np.log1p(1.0), "rate:head-hand": 0.0, "usual:head-hand": 0.0})
    out = render("v", events, rate, names, groups, ["lose", "win"], "win", person=person)
    free = out.text_verdict_free
    assert "0:02.0-0:04.0 moving torso" in free and "0:20.0-0:22.0 pressing lips" in free
    assert "moving torso x2" in free and "usual 0.50/min" in free and "Verdict" not in free
    assert out.p_positive > 0.5 and out.label == "win" and "Verdict: win" in out.text
    assert "much more whole-body movement" in out.text and "Step 4, reflection" in out.text
    assert [o.code for o in out.observations] == ["moving torso", "moving torso", "pressing lips"]
    # the same gestures from someone who usually moves much more read the other way
    restless = person.copy()
    restless["usual:body"] = np.log1p(6.0)
    assert render("v", events, rate, names, groups, ["lose", "win"], "win", person=restless).p_positive < 0.5
    # a positive class that stands for the unpleasant state turns the rules around
    flipped = render("v", events, rate, names, groups, ["calm", "stressed"], "stressed", person=person,
                     pleasant_is_positive=False)
    assert flipped.p_positive == pytest.approx(1 - out.p_positive) and flipped.label == "calm"
    text_only = render("v", events, rate, names, groups, ["lose", "win"], "win", person=person, mode="none")
    assert text_only.p_positive is None and text_only.label is None and text_only.ok


def _grouped_workspace(work: Path, labels: list, subjects: list) -> Store:
    """Events of iMiGUE's 32 columns: video i shows `moving torso` (class 20) i+1 times a minute."""
    from hiddenemo.data.imigue import EVENT_CLASSES, GESTURE_GROUP_OF
    rows = [{"video_id": f"v{i}", "label": lab, "split": "train" if pd.notna(lab) else "test", "subject_id": s}
            for i, (lab, s) in enumerate(zip(labels, subjects))]
    write_manifest(work, pd.DataFrame(rows))
    DatasetInfo(name="t", classes=["lose", "win"], positive="win",
                extra={"event_groups": {str(k): g for k, g in GESTURE_GROUP_OF.items()}}).save(work)
    store = Store(work)
    for i in range(len(labels)):
        ev = np.zeros((300, 32), np.uint8)
        for k in range(i + 1):
            ev[20 + 50 * k: 25 + 50 * k, EVENT_CLASSES.index(20)] = 1
        store.save(f"v{i}", "events", ev, "test", "1", {"rate_hz": 5.0, "classes": list(EVENT_CLASSES)})
    return store


def test_annotations_person_baseline_reads_no_label(work):
    """Person-relative verdicts are label-free: poisoned labels change no rules-mode verdict."""
    from hiddenemo.teacher.annotations import AnnotationsTeacher
    from hiddenemo.teacher.runner import manifest_videos

    _grouped_workspace(work, [1, 0, 1, 0, pd.NA], ["a", "a", "b", "b", "b"])
    teacher = AnnotationsTeacher(work, DatasetInfo.load(work))
    before = {x.video_id: teacher.ask(x).p_positive for x in manifest_videos(work)}
    table = teacher.table()
    assert table.loc["v0", "usual:body"] == pytest.approx(np.mean(table.loc[["v0", "v1"], "rate:body"]))
    assert before["v1"] > 0.5 > before["v0"]           # v1 moves more than person a usually does
    poisoned = pd.DataFrame([{"video_id": f"v{i}", "label": lab, "split": "train" if i < 4 else "test",
                              "subject_id": s} for i, (lab, s) in enumerate(zip([0, 1, 0, 1, 1], "aabbb"))])
    write_manifest(work, poisoned)
    teacher = AnnotationsTeacher(work, DatasetInfo.load(work))
    assert {x.video_id: teacher.ask(x).p_positive for x in manifest_videos(work)} == before


def test_annotations_cli_and_missing_events(work, capsys):
    small_workspace(work, [1, 0, pd.NA])
    store = Store(work)
    for vid, col in (("v0", 31), ("v1", 0)):            # columns: classes 1..31, then 99
        ev = np.zeros((100, 32), np.uint8)
        ev[10:30, col] = 1
        store.save(vid, "events", ev, "test", "1", {"rate_hz": 5.0, "classes": [*range(1, 32), 99]})
    assert main(["teach", "--work", str(work), "--teacher", "annotations"]) == 0
    out = capsys.readouterr().out
    assert "asked 2 (2 ok, 0 failed)" in out and "1 without input" in out
    verdicts = read_verdicts(work, "annotations")
    # column 0 is class 1 (turtle neck), the last is 99 (illustrative body language): the official names
    assert "turtle neck" in verdicts["v1"].text and "illustrative body language" in verdicts["v0"].text


def test_embed_minilm_default_and_any_encoder_by_path(work, tmp_path, capsys):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    small_workspace(work, [1, pd.NA])
    append_verdict(work, v("v0", 0.7, teacher="behaviour"))
    append_verdict(work, v("v1", 0.3, teacher="behaviour"))
    assert main(["embed", "--work", str(work)]) == 0
    store = Store(work)
    e0 = np.load(store.path("v0", "text.minilm"))
    assert e0.shape == (384,) and e0.dtype == np.float32 and np.isfinite(e0).all()
    meta = store.meta("v0", "text.minilm")
    assert meta["params"]["teacher_id"] == "behaviour" and meta["params"]["variant"] == "verdict_free"
    assert main(["embed", "--work", str(work)]) == 0
    assert "encoded 0 of 2 texts" in capsys.readouterr().out            # nothing redone
    assert main(["embed", "--work", str(work), "--variant", "full"]) == 0
    assert not np.allclose(np.load(store.path("v0", "text.minilm")), e0)   # another text, re-encoded

    # Any transformers encoder by path: a tiny BERT built here (mean-pooled, no sentence-transformers files).
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "text", "of", "cues", "v0", "v1"]))
    tiny = tmp_path / "tiny-bert"
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(tiny)
    BertModel(BertConfig(vocab_size=10, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(tiny)
    assert main(["embed", "--work", str(work), "--encoder", str(tiny)]) == 0
    assert np.load(store.path("v1", "text.tiny-bert")).shape == (16,)
    assert main(["embed", "--work", str(work), "--teacher", "nobody"]) == 2


def test_imigue_annotations_teacher_on_all_videos(imigue_dir, tmp_path, capsys):
    """`teach --teacher annotations` on the real annotation file: a verdict for all 359 videos and a
    report on the 255 labeled ones (the workspace is built in tmp, nothing is copied to the repo)."""
    work = tmp_path / "imigue"
    assert main(["dataset", "imigue", "--labels", str(imigue_dir / "labels_masked.csv"),
                 "--splits", str(imigue_dir / "splits.csv"), "--protocol", "miga", "--out", str(work)]) == 0
    assert main(["teach", "--work", str(work), "--teacher", "annotations"]) == 0
    capsys.readouterr()
    assert main(["teach", "--work", str(work), "--teacher", "annotations", "--report", "true"]) == 0
    out = capsys.readouterr().out
    assert "359 verdicts for 359 videos, 0 failed" in out
    assert "labeled videos: 255, answered 255 (coverage 100.0%); unlabeled answered: 104" in out
    r = teacher_report(work, "annotations")
    assert r["n_labeled_answered"] == 255
    assert r["auroc"] > 0.6      # the rules are fixed in advance, so this is no in-sample fit (was 0.363 when inverted)


def test_annotations_text_is_the_same_in_every_process():
    """A tie between the most frequent gestures of a third is broken by name, not by a set's order
    (which follows PYTHONHASHSEED): the same events give the same text in any process."""
    import os
    import subprocess
    import sys
    script = ("import numpy as np; from hiddenemo.teacher.annotations import render\n"
              "ev = np.zeros((300, 4), np.uint8)\n"
              "for col in range(4): ev[10 + 20 * col: 12 + 20 * col, col] = 1\n"
              "print(render('v', ev, 5.0, ['d gesture', 'c gesture', 'b gesture', 'a gesture'], [None] * 4,"
              " ['lose', 'win'], 'win', mode='none').text)")
    texts = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in range(4)}
    assert len(texts) == 1 and "early 4 (mostly a gesture)" in texts.pop()
