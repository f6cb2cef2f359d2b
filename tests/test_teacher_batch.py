"""`teach --batch`: the real google-genai and openai clients against loopback servers speaking each
provider's batch format (tests/fake_batch_servers.py): submit, results as ordinary verdicts, failed
items, the batch price, and a `teach` killed while waiting whose job the next `teach` collects."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fake_batch_servers import GeminiBatchServer, OpenAIBatchServer
from fake_servers import openai_error
from hiddenemo.cli import main
from hiddenemo.teacher.batch import job_path
from hiddenemo.teacher.store import read_all, read_verdicts
from test_teacher_vlm import KEY, camel, vlm_work  # noqa: F401 - the fixture: three tiny videos, two labeled

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--vlm.batch_poll_s", "0.05", "--vlm.backoff_s", "0.05", "--vlm.max_retries", "2", "--vlm.poll_s", "0.05"]


def teach(work: Path, teacher: str, url: str, *extra: str) -> list[str]:
    model = ["--vlm.model", "gpt-4o"] if teacher == "openai" else []
    return ["teach", "--work", str(work), "--teacher", teacher, "--vlm.base_url", url + ("/v1" if teacher == "openai" else ""),
            *model, *FAST, *extra]


def test_openai_batch_submits_one_job_and_stores_ordinary_verdicts(vlm_work, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with OpenAIBatchServer(running_polls=2) as server:
        server.queue(openai_error(400, "image too large", kind="invalid_request_error"))   # the first item fails
        assert main(teach(vlm_work, "openai", server.url, "--batch", "true")) == 0
        assert server.created() == 1
        upload = json.loads(next(iter(server.files.values())).decode().splitlines()[0])
        assert upload["method"] == "POST" and upload["url"] == "/v1/chat/completions"
        assert upload["body"]["response_format"]["type"] == "json_schema"
        assert any(c["type"] == "image_url" for c in upload["body"]["messages"][0]["content"])
        verdicts = {v.video_id: v for v in read_all(vlm_work, "openai")}
        assert sorted(verdicts) == ["v0", "v1", "v2"]
        failed = [v for v in verdicts.values() if not v.ok]
        assert len(failed) == 1 and "HTTP 400" in failed[0].reason and "image too large" in failed[0].reason
        ok = next(v for v in verdicts.values() if v.ok)
        assert ok.p_positive == pytest.approx(0.72) and ok.label == "win" and ok.cache_key
        assert ok.cost_usd == pytest.approx((9000 * 1.25 + 380 * 10.0) / 1e6 * 0.5)      # the batch price
        assert not job_path(vlm_work, "openai").exists()                               # collected
        assert set(server.deleted) == set(server.files)            # input, output and error files deleted
        out = capsys.readouterr().out
        assert "2 ok, 1 failed" in out

        # The failed one goes into a new job of its own; the answered ones are never asked again.
        assert main(teach(vlm_work, "openai", server.url, "--batch", "true", "--retry_failed", "true")) == 0
        assert server.created() == 2 and len(server.jobs["batch_2"]["requests"]) == 1
        assert sorted(read_verdicts(vlm_work, "openai")) == ["v0", "v1", "v2"]


def test_gemini_batch_inlines_requests_with_uploaded_files(vlm_work, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with GeminiBatchServer(running_polls=1) as server:
        assert main(teach(vlm_work, "gemini", server.url, "--batch", "true")) == 0
        assert server.created() == 1
        requests = server.jobs["job1"]["requests"]
        assert sorted(r["metadata"]["key"] for r in requests) == ["v0", "v1", "v2"]
        assert server.jobs["job1"]["model"] == "models/gemini-2.5-pro"
        first = camel(requests[0]["request"])          # SDK 3.x sends some keys in snake_case; the API takes both
        parts = first["contents"][0]["parts"]
        assert parts[0]["fileData"]["fileUri"].startswith(server.url) and "videoMetadata" in parts[0]
        assert first["generationConfig"]["responseMimeType"] == "application/json"
        assert "responseSchema" in first["generationConfig"]
        verdicts = read_verdicts(vlm_work, "gemini")
        assert sorted(verdicts) == ["v0", "v1", "v2"] and verdicts["v1"].label == "win"
        assert verdicts["v0"].cost_usd == pytest.approx((15800 * 1.25 + 1320 * 10.0) / 1e6 * 0.5)
        assert not server.files                                  # every upload deleted after the results
        assert not job_path(vlm_work, "gemini").exists()
        # Online answers and batch answers share the cache: nothing is asked again.
        assert main(teach(vlm_work, "gemini", server.url)) == 0
        assert server.created() == 1 and not server.model_calls()


def test_dry_run_shows_the_batch_price(vlm_work, capsys):
    assert main(["teach", "--work", str(vlm_work), "--teacher", "gemini", "--dry_run", "true"]) == 0
    online = capsys.readouterr().out
    assert main(["teach", "--work", str(vlm_work), "--teacher", "gemini", "--dry_run", "true", "--batch", "true"]) == 0
    batch = capsys.readouterr().out
    price = lambda text: float(text.split("about US$")[1].split()[0])
    assert price(batch) == pytest.approx(price(online) / 2, abs=0.01)
    assert f"batch price: 50% of the online US${price(online):.2f}" in batch


@pytest.mark.parametrize("teacher", ["openai", "gemini"])
def test_killed_while_waiting_the_next_teach_collects_the_same_job(vlm_work, teacher, monkeypatch, capsys):
    env_key = "OPENAI_API_KEY" if teacher == "openai" else "GEMINI_API_KEY"
    monkeypatch.setenv(env_key, KEY)
    server_cls = OpenAIBatchServer if teacher == "openai" else GeminiBatchServer
    with server_cls(running_polls=None) as server:
        env = {**os.environ, env_key: KEY, "PYTHONPATH": str(ROOT / "src")}
        proc = subprocess.Popen([sys.executable, "-m", "hiddenemo.cli", *teach(vlm_work, teacher, server.url, "--batch", "true")],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while not (job_path(vlm_work, teacher).exists() and any(j["polls"] >= 2 for j in server.jobs.values())):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the batch job was never submitted and polled"
                time.sleep(0.1)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert read_all(vlm_work, teacher) == []                      # nothing answered yet
        job = json.loads(job_path(vlm_work, teacher).read_text())
        assert sorted(job["videos"]) == ["v0", "v1", "v2"]

        server.release()                                              # the provider finishes meanwhile
        assert main(teach(vlm_work, teacher, server.url)) == 0         # no --batch: the pending job is collected
        assert server.created() == 1                                  # resumed, never resubmitted
        assert sorted(read_verdicts(vlm_work, teacher)) == ["v0", "v1", "v2"]
        assert not job_path(vlm_work, teacher).exists()
        assert not server.model_calls()                               # no online call either
