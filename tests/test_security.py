"""Security review, as tests: secrets only from the environment and redacted; no pickle when loading;
no shell; untrusted text escaped in the HTML report; store paths confined to the workspace;
dependency versions bounded."""
from __future__ import annotations

import ast
import dataclasses
import json
import logging
import re
import tomllib
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "src" / "hiddenemo").rglob("*.py"))
KEY = "sk-test-0123456789abcdef"


def calls(name: str):
    """(file, line, ast.Call) for every call of a function or method called `name` in src."""
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if called == name:
                    yield path.relative_to(ROOT), node.lineno, node


def keyword(node: ast.Call, name: str):
    return next((k.value for k in node.keywords if k.arg == name), None)


def test_no_shell_anywhere_in_src():
    offenders = [f"{p}:{n}" for name in ("run", "Popen", "call", "check_call", "check_output")
                 for p, n, node in calls(name)
                 if isinstance(keyword(node, "shell"), ast.Constant) and keyword(node, "shell").value]
    offenders += [f"{p}:{n}" for p, n, _ in calls("system")] + [f"{p}:{n}" for p, n, _ in calls("popen")]
    assert not offenders, offenders


def test_nothing_is_loaded_with_pickle():
    text = {p: p.read_text() for p in SOURCES}
    assert not [p for p, t in text.items() if re.search(r"^\s*(import|from) (c?pickle|dill|joblib)\b", t, re.M)]
    for p, n, node in calls("load"):
        weights_only = keyword(node, "weights_only")
        allow_pickle = keyword(node, "allow_pickle")
        if isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") == "torch":
            assert isinstance(weights_only, ast.Constant) and weights_only.value is True, f"{p}:{n}"
        if allow_pickle is not None:
            assert isinstance(allow_pickle, ast.Constant) and allow_pickle.value is False, f"{p}:{n}"
    assert not [p for p, t in text.items() if "read_pickle" in t or "allow_pickle=True" in t]


def test_checkpoints_are_safetensors_and_optimizer_state_loads_weights_only(tmp_path):
    import torch

    from hiddenemo.train.build import load_weights
    from hiddenemo.train.module import load_optimizer_state, save_weights

    model = torch.nn.Linear(3, 2)
    save_weights(model, tmp_path / "w.safetensors")
    assert (tmp_path / "w.safetensors").read_bytes()[8:9] == b"{"          # safetensors: length + JSON header
    load_weights(torch.nn.Linear(3, 2), tmp_path / "w.safetensors")

    class Evil:
        def __reduce__(self):
            return (print, ("pickle ran code",))

    torch.save({"state": Evil()}, tmp_path / "optimizer.pt")
    with pytest.raises(Exception, match="(?i)weights.only|unsupported|global"):
        load_optimizer_state(tmp_path / "optimizer.pt")


def test_secrets_come_from_the_environment_and_are_redacted(monkeypatch, tmp_path, caplog):
    from hiddenemo.teacher.retry import RedactingFilter, redact
    from hiddenemo.teacher.schema import failed
    from hiddenemo.teacher.store import append_status, append_verdict, verdict_path

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert KEY not in redact(f"401 for key {KEY}") and "[redacted]" in redact(KEY)
    append_verdict(tmp_path, failed("v1", "t", f"HTTP 401: bad key {KEY}", raw=f"echo {KEY}"))
    append_status(tmp_path, "teach", {"video_id": "v1", "reason": f"key {KEY}"})
    for path in (verdict_path(tmp_path, "t"), tmp_path / "status" / "teach.jsonl"):
        assert KEY not in path.read_text()
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "calling with %s", (KEY,), None)
    RedactingFilter().filter(record)
    assert KEY not in record.getMessage()
    # No option of any config takes a secret: keys are never written into config.yaml or a run.
    from hiddenemo.extract.config import ExtractConfig
    from hiddenemo.teacher.config import VlmConfig
    from hiddenemo.train.config import TrainConfig
    for config in (VlmConfig, ExtractConfig, TrainConfig):
        names = [f.name for f in dataclasses.fields(config)]
        assert not [n for n in names if re.search(r"(^|_)(key|secret|password|token)($|_)", n)], names


def test_untrusted_text_is_escaped_in_the_report(tmp_path):
    from hiddenemo.report.page import _html_table, _note

    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    page = _html_table(pd.DataFrame({"video_id": [hostile], "teacher's text": [hostile]})) + _note(hostile)
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;" in page


def test_store_paths_stay_in_the_workspace(tmp_path):
    from hiddenemo.data.ids import UnsafeName
    from hiddenemo.data.store import Store, StoreError, run_dir

    store = Store(tmp_path / "work")
    for bad in ("../x", "..", "a/b", "/etc/passwd", ".hidden", "x\x00y", "a" * 300):
        with pytest.raises(UnsafeName):
            store.path(bad, "pose")
        with pytest.raises(UnsafeName):
            run_dir(tmp_path, bad)
    with pytest.raises(ValueError):
        store.path("v1", "../pose")
    (tmp_path / "outside").mkdir()
    (tmp_path / "work" / "store").mkdir(parents=True)
    (tmp_path / "work" / "store" / "v1").symlink_to(tmp_path / "outside")
    with pytest.raises(StoreError, match="outside the store"):
        store.save("v1", "pose", __import__("numpy").zeros(3), "p", "1")
    assert not list((tmp_path / "outside").iterdir())


def test_dependency_versions_are_bounded():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"]) + [s for extra in project["optional-dependencies"].values() for s in extra]
    unbounded = [s for s in specs if "==" not in s and "<" not in s]
    assert not unbounded, f"dependencies without an upper bound or pin in pyproject.toml: {unbounded}"
