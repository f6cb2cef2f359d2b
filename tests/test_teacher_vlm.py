"""The gemini and openai teachers end to end: the real google-genai and openai clients against local
servers on 127.0.0.1 speaking each provider's wire format (tests/fake_servers.py)."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import helpers_video
import numpy as np
import pandas as pd
import pytest

from fake_servers import (ANSWER, GeminiServer, OpenAIServer, gemini_error, gemini_ok, gemini_prompt_blocked,
                          gemini_safety, openai_error, openai_ok)
from hiddenemo.cli import main
from hiddenemo.teacher.registry import make_teacher
from hiddenemo.data.manifest import DatasetInfo, write_manifest
from hiddenemo.teacher import runner
from hiddenemo.teacher.config import VlmConfig
from hiddenemo.teacher.store import read_all, read_verdicts

KEY = "AIzaTEST-secret-key-0123456789"


def make_video(path: Path, seconds: float = 2.0, fps: int = 10, seed: int = 0) -> Path:
    """A 64x48 clip of noise (the servers never look at it; its bytes make the cache key)."""
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(int(seconds * fps))]
    return helpers_video.write_video(path, frames, fps=fps)


@pytest.fixture
def vlm_work(work: Path) -> Path:
    rows = []
    for i, label in enumerate([1, 0, pd.NA]):
        path = make_video(work / f"v{i}.mp4", seed=i)
        rows.append({"video_id": f"v{i}", "path": str(path), "label": label, "split": "train" if i < 2 else "test",
                     "fps": 10.0, "n_frames": 20, "source": "test"})
    write_manifest(work, pd.DataFrame(rows))
    DatasetInfo(name="t", classes=["lose", "win"], positive="win").save(work)
    return work


def camel(node):
    """Proto-JSON key spelling: snake_case and lowerCamelCase are the same field."""
    if isinstance(node, dict):
        return {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): camel(v) for k, v in node.items()}
    return [camel(v) for v in node] if isinstance(node, list) else node


def fast(**kw) -> VlmConfig:
    return VlmConfig(backoff_s=0.05, max_backoff_s=5.0, poll_s=0.05, max_retries=3, concurrency=1, **kw)


def run_one(work: Path, name: str, cfg: VlmConfig, video: str = "v0", retry_failed: bool = False):
    teacher = make_teacher(name, work, cfg)
    summary = runner.run(work, teacher, name, runner.manifest_videos(work, [video]), retry_failed=retry_failed)
    return summary, read_all(work, name)[-1] if read_all(work, name) else None


# ---------------------------------------------------------------------------------------- gemini

def test_gemini_success_uploads_polls_and_asks_with_schema(vlm_work, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with GeminiServer(polls_until_active=3) as server:
        summary, v = run_one(vlm_work, "gemini", fast(base_url=server.url, fps=2.0, start_s=0.5, end_s=1.5))
    assert summary.ok == 1 and v.ok and v.p_positive == pytest.approx(0.72) and v.label == "win"
    assert (v.input_tokens, v.output_tokens, v.thinking_tokens) == (15800, 420, 900)
    assert v.cost_usd == pytest.approx((15800 * 1.25 + 1320 * 10.0) / 1e6)
    assert v.model == "gemini-2.5-pro" and v.prompt_version == "cot_reflection_v1"
    assert v.observations[0].code == "AU12" and "Verdict: win" in v.text
    assert "win" not in v.text_verdict_free.lower().replace("window", "")   # the verdict-free text names no class
    api = server.version                                                         # the SDK's choice
    paths = [(r["method"], r["path"]) for r in server.requests]
    assert paths[0] == ("POST", f"/upload/{api}/files") and paths[1] == ("POST", f"/upload/{api}/files")
    assert sum(p == ("GET", f"/{api}/files/vid0001") for p in paths) == 3         # polled until ACTIVE
    assert ("DELETE", f"/{api}/files/vid0001") in paths                          # upload cleaned up
    call = server.model_calls()[0]
    assert call["path"] == f"/{api}/models/gemini-2.5-pro:generateContent"
    assert call["headers"]["x-goog-api-key"] == KEY
    body = camel(json.loads(call["body"]))          # SDK 3.x sends some keys in snake_case; the API takes both
    video_part = body["contents"][0]["parts"][0]
    assert video_part["fileData"]["fileUri"].endswith(f"/{api}/files/vid0001")
    assert video_part["videoMetadata"] == {"fps": 2.0, "startOffset": "0.500s", "endOffset": "1.500s"}
    gen = body["generationConfig"]
    assert gen["responseMimeType"] == "application/json" and "observations" in json.dumps(gen["responseSchema"])
    assert gen["thinkingConfig"]["thinkingBudget"] == 2048 and gen["maxOutputTokens"] == 8192
    assert '"lose", "win"' in body["contents"][0]["parts"][1]["text"]           # class names in the prompt


def test_gemini_429_honours_retry_delay_then_succeeds(vlm_work, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with GeminiServer() as server:
        server.queue(gemini_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", "0.4s"))
        summary, v = run_one(vlm_work, "gemini", fast(base_url=server.url))
        calls = server.model_calls()
    assert v.ok and len(calls) == 2
    assert calls[1]["time"] - calls[0]["time"] >= 0.4          # waited at least the server's retryDelay


def test_gemini_500_backs_off_then_gives_up_with_reason(vlm_work, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with GeminiServer() as server:
        server.queue(gemini_error(500, "INTERNAL", "An internal error has occurred."))
        summary, v = run_one(vlm_work, "gemini", fast(base_url=server.url))
        assert v.ok and len(server.model_calls()) == 2
        server.queue(*[gemini_error(503, "UNAVAILABLE", "The model is overloaded.")] * 4)
        summary, v = run_one(vlm_work, "gemini", fast(base_url=server.url), video="v1")
        assert len(server.model_calls()) == 2 + 4                   # first try + max_retries
    assert not v.ok and "503" in v.reason and "gave up after 3 retries" in v.reason
    assert v.p_positive is None and v.label is None


@pytest.mark.parametrize("reply, reason", [
    (gemini_ok("{\"observations\": [ {\"code\": \"AU12\""), "malformed"),
    (gemini_ok(json.dumps({**ANSWER, "verdict": "draw"})), "malformed"),
    (gemini_ok("{\"observations\": [", finish="MAX_TOKENS"), "truncated"),
    (gemini_safety(), "refused (finish_reason SAFETY)"),
    (gemini_prompt_blocked(), "refused: prompt blocked (SAFETY)"),
])
def test_gemini_bad_answers_are_failures_never_labels(vlm_work, monkeypatch, reply, reason):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with GeminiServer() as server:
        server.queue(reply)
        summary, v = run_one(vlm_work, "gemini", fast(base_url=server.url))
        assert summary.failed == 1 and not v.ok and reason in v.reason
        assert v.p_positive is None and v.label is None and v.input_tokens == 15800   # the tokens were paid
        assert read_verdicts(vlm_work, "gemini") == {}
        # A re-run skips the recorded failure; --retry_failed asks again (and now succeeds).
        summary, _ = run_one(vlm_work, "gemini", fast(base_url=server.url))
        assert summary.asked == 0 and summary.cached_failed == 1
        summary, v = run_one(vlm_work, "gemini", fast(base_url=server.url), retry_failed=True)
        assert summary.ok == 1 and v.ok and len(server.model_calls()) == 2
    assert set(read_verdicts(vlm_work, "gemini")) == {"v0"}


def test_gemini_thinking_budget_must_leave_room_for_the_answer(vlm_work, monkeypatch):
    from hiddenemo.errors import UserError

    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with pytest.raises(UserError, match="no room for the answer"):
        make_teacher("gemini", vlm_work, VlmConfig(max_output_tokens=4096, thinking_budget=4000))


def test_missing_key_is_a_clear_error(vlm_work, monkeypatch):
    for k in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(k, raising=False)
    assert main(["teach", "--work", str(vlm_work), "--teacher", "gemini"]) == 2
    assert main(["teach", "--work", str(vlm_work), "--teacher", "gemini", "--dry_run", "true"]) == 0  # no key needed
    assert main(["teach", "--work", str(vlm_work), "--teacher", "openai", "--vlm.model", "m"]) == 2


# ---------------------------------------------------------------------------------------- openai

def test_openai_success_sends_frames_and_json_schema(vlm_work, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with OpenAIServer() as server:
        summary, v = run_one(vlm_work, "openai", fast(base_url=server.url + "/v1", model="qwen2.5-vl-7b",
                                                      fps=4.0, max_frames=5))
    assert v.ok and v.p_positive == pytest.approx(0.72) and v.label == "win"
    assert (v.input_tokens, v.output_tokens) == (9000, 380) and v.model == "qwen2.5-vl-7b"
    assert json.loads(v.raw)["id"] == "chatcmpl-fake1"                         # the body, verbatim
    call = server.model_calls()[0]
    assert call["headers"]["authorization"] == f"Bearer {KEY}"
    body = json.loads(call["body"])
    images = [c for c in body["messages"][0]["content"] if c["type"] == "image_url"]
    assert len(images) == 5 and images[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["required"] == list(ANSWER)


def test_openai_429_retry_after_then_5xx_then_success(vlm_work, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with OpenAIServer() as server:
        server.queue(openai_error(429, "Rate limit reached for requests", retry_after="0.5", kind="requests"),
                     openai_error(500, "The server had an error while processing your request."))
        summary, v = run_one(vlm_work, "openai", fast(base_url=server.url + "/v1", model="m"))
        calls = server.model_calls()
    assert v.ok and len(calls) == 3
    assert calls[1]["time"] - calls[0]["time"] >= 0.5


@pytest.mark.parametrize("reply, reason", [
    (openai_ok("this is not json"), "malformed"),
    (openai_ok('{"observations": [', finish="length"), "truncated answer (finish_reason length)"),
    (openai_ok(None, refusal="I'm sorry, I can't help with judging people in videos."), "refused: I'm sorry"),
    (openai_ok(None, finish="content_filter"), "refused (finish_reason content_filter)"),
    (openai_error(400, "Invalid image", kind="invalid_request_error"), "HTTP 400"),
])
def test_openai_bad_answers_are_failures(vlm_work, monkeypatch, reply, reason):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with OpenAIServer() as server:
        server.queue(reply)
        summary, v = run_one(vlm_work, "openai", fast(base_url=server.url + "/v1", model="m"))
        assert len(server.model_calls()) == 1                       # not retried: it would not help
    assert not v.ok and reason in v.reason and v.p_positive is None and v.label is None


# ------------------------------------------------------------------------------ cache, CLI, secrets

def test_cli_dry_run_estimates_then_runs_then_asks_nothing_twice(vlm_work, monkeypatch, capsys):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with GeminiServer() as server:
        args = ["teach", "--work", str(vlm_work), "--teacher", "gemini", "--vlm.base_url", server.url,
                "--vlm.poll_s", "0.05", "--vlm.fps", "1"]
        assert main(args + ["--dry_run", "true"]) == 0
        out = capsys.readouterr().out
        assert "dry run: 3 videos to ask" in out and "US$" in out and not server.model_calls()
        assert main(args) == 0
        out = capsys.readouterr().out
        assert "asked 3 (3 ok, 0 failed)" in out and "coverage 100.0%" in out and "AUROC" in out
        assert main(args) == 0
        assert "asked 0" in capsys.readouterr().out and len(server.model_calls()) == 3
        # A new prompt parameter is a new cache key: everything is asked again.
        assert main(args[:-1] + ["2"]) == 0
        assert len(server.model_calls()) == 6


def test_api_key_never_reaches_logs_cache_or_errors(vlm_work, monkeypatch, capsys, caplog, tmp_path):
    """The server echoes the key in its error messages (as a misconfigured proxy might): it must be
    scrubbed from the verdicts, the status log, log records and what the user sees."""
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    log_file = tmp_path / "debug.log"
    handler = logging.FileHandler(log_file)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    try:
        with GeminiServer() as g, OpenAIServer() as o:
            g.queue(gemini_error(429, "RESOURCE_EXHAUSTED", f"quota for key {KEY} exceeded", "0.01s"),
                    gemini_error(400, "INVALID_ARGUMENT", f"API key {KEY} not valid. Please pass a valid API key."))
            o.queue(openai_error(401, f"Incorrect API key provided: {KEY}", kind="invalid_request_error"))
            # every answer fails (a bad key): the command fails too (exit 2), and its error is scrubbed
            assert main(["teach", "--work", str(vlm_work), "--teacher", "gemini", "--vlm.base_url", g.url,
                         "--vlm.poll_s", "0.01", "--videos", "[v0]"]) == 2
            assert main(["teach", "--work", str(vlm_work), "--teacher", "openai", "--vlm.model", "m",
                         "--vlm.base_url", o.url + "/v1", "--videos", "[v0]"]) == 2
            assert g.model_calls()[0]["headers"]["x-goog-api-key"] == KEY      # the key was used ...
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    failures = [v for t in ("gemini", "openai") for v in read_all(vlm_work, t)]
    assert len(failures) == 2 and all(not v.ok and "[redacted]" in v.reason for v in failures)
    seen = capsys.readouterr()
    texts = {"stdout": seen.out, "stderr": seen.err, "caplog": caplog.text, "log file": log_file.read_text()}
    texts.update({str(p): p.read_text() for p in vlm_work.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json")})
    assert "[redacted]" in texts["caplog"]
    for where, text in texts.items():
        assert KEY not in text, f"API key leaked into {where}"
