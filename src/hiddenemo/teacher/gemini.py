"""The `gemini` teacher: Google's `google-genai` client (an adapter: the only module importing it).

Per video: upload the file (resumable upload), poll until the file is ACTIVE, ask generateContent
with the prompt, the video part (sampling fps and clip offsets in `video_metadata`), the answer
schema (`response_schema`) and a thinking budget, check the finish reason, and delete the upload.
The SDK's own retries are switched off so that `call_with_retries` decides: a 429's RetryInfo
`retryDelay` is honoured (and pauses all workers), 5xx back off exponentially.

Batch mode (`teach --batch`, `hiddenemo.teacher.batch`): every video is uploaded and waited ACTIVE as
above, then one `batchGenerateContent` job carries the same requests inlined (each with its video id
as `metadata.key`); its inlined responses are read as online answers are. The uploads are kept until
the results are stored (a job may take up to 24 h; uploads live 48 h).
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from hiddenemo.data.manifest import DatasetInfo
from hiddenemo.errors import UserError
from hiddenemo.teacher.config import VlmConfig
from hiddenemo.teacher.retry import Retryable, TeacherFailure, parse_duration, redact
from hiddenemo.teacher.runner import Video, manifest_videos
from hiddenemo.teacher.schema import Verdict, VlmAnswer
from hiddenemo.teacher.vlm import VlmTeacher

log = logging.getLogger(__name__)
RETRY_CODES = {408, 500, 502, 503, 504}
BATCH_DONE = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}
REFUSALS = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE", "OTHER",
            "IMAGE_SAFETY"}


def api_key() -> str:
    key = os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
    if not key:
        raise UserError("the gemini teacher needs an API key in the environment: export GEMINI_API_KEY "
                        "(or GOOGLE_API_KEY); keys are never read from files or the command line")
    return key


class GeminiTeacher(VlmTeacher):
    name = "gemini"
    default_model = "gemini-2.5-pro"

    def __init__(self, work: Path, info: DatasetInfo, cfg: VlmConfig, connect: bool = True, batch: bool = False):
        super().__init__(work, info, cfg, batch)
        if not connect:                  # a dry run estimates cost without a key or a client
            return
        from google import genai
        from google.genai import types

        self.types = types
        options = types.HttpOptions(base_url=cfg.base_url, timeout=int(cfg.timeout_s * 1000),
                                    retry_options=None)
        self.client = genai.Client(api_key=api_key(), http_options=options)

    def ask(self, video: Video) -> Verdict:
        uploaded = self._upload(video)
        try:
            uploaded = self._wait_active(video, uploaded)
            response = self.retrying(lambda: self._generate(video, uploaded),
                                     f"video {video.video_id}: generateContent")
            return self._verdict(video, response)
        finally:
            try:
                self.client.files.delete(name=uploaded.name)
            except Exception as e:  # noqa: BLE001 - files expire after 48 h anyway; never fail a verdict on it
                log.info("video %s: could not delete upload %s: %s", video.video_id, uploaded.name, redact(str(e)))

    def _upload(self, video: Video):
        path = self.video_file(video)
        return self.retrying(lambda: self._call(self.client.files.upload, file=str(path)),
                             f"video {video.video_id}: upload")

    def _wait_active(self, video: Video, file):
        waited = 0.0
        while getattr(file.state, "value", file.state) != "ACTIVE":
            state = getattr(file.state, "value", file.state)
            if state == "FAILED":
                raise TeacherFailure(f"upload of {video.video_id} failed on the server: {file.error}")
            if waited >= self.cfg.max_poll_s:
                raise TeacherFailure(f"upload of {video.video_id} not ACTIVE after {waited:.0f} s (state {state})")
            time.sleep(self.cfg.poll_s)
            waited += self.cfg.poll_s
            file = self.retrying(lambda: self._call(self.client.files.get, name=file.name),
                                 f"video {video.video_id}: file state")
        return file

    def _request(self, video: Video, file) -> dict:
        """contents and config of the generateContent request about `video` (online or in a batch)."""
        t = self.types
        start, end = self.cfg.clip(video.duration_s)
        meta = t.VideoMetadata(fps=self.cfg.fps, start_offset=f"{start:.3f}s" if start else None,
                               end_offset=None if self.cfg.end_s is None else f"{end:.3f}s")
        part = t.Part(file_data=t.FileData(file_uri=file.uri, mime_type=file.mime_type), video_metadata=meta)
        config = t.GenerateContentConfig(
            temperature=self.cfg.temperature, max_output_tokens=self.cfg.max_output_tokens,
            response_mime_type="application/json", response_schema=VlmAnswer,
            thinking_config=t.ThinkingConfig(thinking_budget=self.cfg.thinking_budget))
        return {"contents": [t.Content(role="user", parts=[part, t.Part(text=self.prompt(video))])], "config": config}

    def _generate(self, video: Video, file):
        return self._call(self.client.models.generate_content, model=self.model, **self._request(video, file))

    # --- the Batch API (`hiddenemo.teacher.batch`): inlined requests naming uploaded files ----------


    def batch_submit(self, todo: list) -> dict:
        """Upload every video (kept until the results are in), then one batchGenerateContent job."""
        from tqdm import tqdm

        requests, uploads, failures = [], [], {}
        for video, _ in tqdm(todo, desc="upload for batch", unit="video"):
            try:
                file = self._upload(video)
                uploads.append(file.name)
                file = self._wait_active(video, file)
            except TeacherFailure as e:         # one video that cannot be uploaded never stops the job
                failures[video.video_id] = e.reason
                continue
            requests.append(self.types.InlinedRequest(**self._request(video, file), metadata={"key": video.video_id}))
        if not requests:
            return {"id": None, "uploads": uploads, "failed": failures}
        job = self.retrying(lambda: self._call(self.client.batches.create, model=self.model, src=requests,
                                               config={"display_name": f"hiddenemo {self.work.name}"}),
                            "batches.create")
        return {"id": job.name, "uploads": uploads, "failed": failures}

    def batch_state(self, job: dict):
        from hiddenemo.teacher.batch import BatchState

        state = _enum(self._call(self.client.batches.get, name=job["id"]).state)
        return BatchState(state, state in BATCH_DONE)

    def batch_results(self, job: dict) -> dict:
        from hiddenemo.teacher.batch import answer_or_failure

        got = self.retrying(lambda: self._call(self.client.batches.get, name=job["id"]), "batches.get")
        videos = {v.video_id: v for v in manifest_videos(self.work, list(job["videos"]))}
        out = {}
        for item in (got.dest and got.dest.inlined_responses) or []:
            video_id = (item.metadata or {}).get("key")
            if video_id not in videos:
                continue
            if item.error is not None:
                out[video_id] = TeacherFailure(f"batch item failed: {item.error.code} {item.error.message}")
            else:
                out[video_id] = answer_or_failure(self._verdict, videos[video_id], item.response)
        return out

    def batch_cleanup(self, job: dict) -> None:
        for name in job["uploads"]:
            self.client.files.delete(name=name)

    def _call(self, fn, **kwargs):
        """One SDK call, its errors sorted into Retryable and TeacherFailure."""
        from google.genai import errors

        try:
            return fn(**kwargs)
        except errors.APIError as e:
            what = f"HTTP {e.code} {e.status or ''}: {e.message or ''}".strip()
            if e.code == 429:
                raise Retryable(what, delay_s=retry_delay(e.details)) from None
            if e.code in RETRY_CODES:
                raise Retryable(what) from None
            raise TeacherFailure(what) from None
        except Exception as e:  # noqa: BLE001
            if _is_transport_error(e):
                raise Retryable(f"connection error: {type(e).__name__}: {e}") from None
            raise

    def _verdict(self, video: Video, response) -> Verdict:
        raw = response.model_dump_json(exclude_none=True, exclude={"sdk_http_response", "parsed"})
        u = response.usage_metadata
        usage = dict(input_tokens=(u and u.prompt_token_count) or 0,
                     output_tokens=(u and u.candidates_token_count) or 0,
                     thinking_tokens=(u and u.thoughts_token_count) or 0)
        cost = self.cost(usage["input_tokens"], usage["output_tokens"] + usage["thinking_tokens"])
        model = response.model_version or self.model
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            raise TeacherFailure(f"refused: prompt blocked ({_enum(feedback.block_reason)})", raw=raw,
                                 cost_usd=cost, model=model, **usage)
        if not response.candidates:
            raise TeacherFailure("no candidates in the response", raw=raw, cost_usd=cost, model=model, **usage)
        cand = response.candidates[0]
        reason = _enum(cand.finish_reason)
        if reason == "MAX_TOKENS":
            raise TeacherFailure(
                f"truncated answer (finish_reason MAX_TOKENS after {usage['thinking_tokens']} thinking and "
                f"{usage['output_tokens']} answer tokens): raise --vlm.max_output_tokens or lower "
                "--vlm.thinking_budget", raw=raw, cost_usd=cost, model=model, **usage)
        if reason in REFUSALS:
            raise TeacherFailure(f"refused (finish_reason {reason})", raw=raw, cost_usd=cost, model=model, **usage)
        parts = (cand.content and cand.content.parts) or []
        text = "".join(p.text for p in parts if p.text and not p.thought)
        return self.verdict_from_text(video, text, raw, model, **usage)


def retry_delay(details) -> float | None:
    """The `retryDelay` of a google.rpc.RetryInfo in an error body, in seconds."""
    error = details.get("error", details) if isinstance(details, dict) else {}
    for d in error.get("details", []) or []:
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            return parse_duration(d.get("retryDelay"))
    return None


def _enum(value) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def _is_transport_error(e: Exception) -> bool:
    import httpx

    kinds = [httpx.TransportError, ConnectionError]
    try:
        import httpx2
        kinds.append(httpx2.TransportError)
    except ImportError:
        pass
    return isinstance(e, tuple(kinds))
