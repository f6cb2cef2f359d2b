"""The `openai` teacher: any OpenAI-compatible chat endpoint serving a VLM (vLLM, Ollama, LM Studio,
OpenAI itself), through the `openai` client (an adapter: the only module importing it).

Frames are sampled with PyAV at `fps` (at most `max_frames`, spread evenly over the clip), scaled to
`frame_size` and sent as base64 JPEG images with their times; the answer is asked for in the
`json_schema` response format. The client's own retries are off: `call_with_retries` honours
`retry-after` / `retry-after-ms` on 429 and backs off on 5xx, as for Gemini.

Batch mode (`teach --batch`, `hiddenemo.teacher.batch`): the same request bodies, one JSONL line per
video (`custom_id` = video id), uploaded as a file of purpose `batch` and run as one batch on
/v1/chat/completions; the output file's responses are read as online answers are, the error file's
lines are failures. Needs a server with the Batch API (OpenAI's; a vLLM server has none).
"""
from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import numpy as np

from hiddenemo.data.manifest import DatasetInfo
from hiddenemo.errors import UserError
from hiddenemo.teacher import prompts
from hiddenemo.teacher.config import VlmConfig
from hiddenemo.teacher.retry import Retryable, TeacherFailure, parse_duration
from hiddenemo.teacher.runner import Video, manifest_videos
from hiddenemo.teacher.schema import Verdict
from hiddenemo.teacher.texts import fmt_time
from hiddenemo.teacher.vlm import VlmTeacher

RETRY_CODES = {408, 409, 500, 502, 503, 504}
BATCH_ENDPOINT = "/v1/chat/completions"
BATCH_DONE = {"completed", "failed", "expired", "cancelled"}


class OpenAITeacher(VlmTeacher):
    name = "openai"

    def __init__(self, work: Path, info: DatasetInfo, cfg: VlmConfig, connect: bool = True, batch: bool = False):
        super().__init__(work, info, cfg, batch)
        if not self.model:
            raise UserError("the openai teacher needs --vlm.model (the model name your server serves)")
        if not connect:                  # a dry run estimates cost without a key or a client
            return
        key = os.environ.get("OPENAI_API_KEY")
        if not key and not cfg.base_url:
            raise UserError("the openai teacher needs OPENAI_API_KEY in the environment, or --vlm.base_url "
                            "pointing to a local server that needs no key")
        import openai

        self.openai = openai
        self.client = openai.OpenAI(api_key=key or "no-key", base_url=cfg.base_url, max_retries=0,
                                    timeout=cfg.timeout_s)

    def n_frames_seen(self, video: Video) -> int:
        return min(super().n_frames_seen(video), self.cfg.max_frames)

    def estimate(self, video: Video) -> dict:
        # Frames only: no audio track is sent to a chat endpoint.
        n_in = self.n_frames_seen(video) * self.cfg.tokens_per_frame + len(self.prompt(video)) // 4
        n_out = self.cfg.answer_tokens
        return {"input_tokens": n_in, "output_tokens": n_out, "cost_usd": self.cost(n_in, n_out)}

    def _request(self, video: Video) -> dict:
        """The chat.completions body about `video` (online, or one line of a batch file)."""
        content: list[dict] = [{"type": "text", "text": self.prompt(video)}]
        for t, jpeg in sample_frames(self.video_file(video), self.cfg, video.duration_s):
            content.append({"type": "text", "text": f"Frame at {fmt_time(t)}:"})
            content.append({"type": "image_url", "image_url": {
                "url": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()}})
        return dict(
            model=self.model, temperature=self.cfg.temperature, max_tokens=self.cfg.max_output_tokens,
            messages=[{"role": "user", "content": content}],
            response_format={"type": "json_schema", "json_schema": {
                "name": "verdict", "strict": True, "schema": prompts.answer_schema()}})

    def ask(self, video: Video) -> Verdict:
        request = self._request(video)
        raw_response = self.retrying(lambda: self._call(request), f"video {video.video_id}: chat.completions")
        return self._verdict(video, raw_response)

    def _call(self, request: dict | None = None, fn=None, **kwargs):
        """One client call (default: a chat completion of `request`), its errors sorted into
        Retryable and TeacherFailure."""
        o = self.openai
        try:
            return fn(**kwargs) if fn else self.client.chat.completions.with_raw_response.create(**request)
        except o.APIStatusError as e:
            what = f"HTTP {e.status_code}: {e.message}"
            if e.status_code == 429:
                headers = e.response.headers
                delay = parse_duration(headers.get("retry-after-ms") and headers["retry-after-ms"] + "ms")
                raise Retryable(what, delay_s=delay if delay is not None
                                else parse_duration(headers.get("retry-after"))) from None
            if e.status_code in RETRY_CODES:
                raise Retryable(what) from None
            raise TeacherFailure(what) from None
        except o.APIConnectionError as e:
            raise Retryable(f"connection error: {e}") from None

    def _verdict(self, video: Video, raw_response) -> Verdict:
        return self._completion_verdict(video, raw_response.text, raw_response.parse)

    def _completion_verdict(self, video: Video, raw: str, parse) -> Verdict:
        try:
            response = parse()
        except Exception as e:  # noqa: BLE001 - a body that is not a chat completion at all
            raise TeacherFailure(f"malformed response (not a chat completion): {e}", raw=raw) from None
        u = response.usage
        usage = dict(input_tokens=(u and u.prompt_tokens) or 0, output_tokens=(u and u.completion_tokens) or 0,
                     thinking_tokens=0)
        cost = self.cost(usage["input_tokens"], usage["output_tokens"])
        model = response.model or self.model
        if not response.choices:
            raise TeacherFailure("no choices in the response", raw=raw, cost_usd=cost, model=model, **usage)
        choice = response.choices[0]
        if choice.message.refusal:
            raise TeacherFailure(f"refused: {choice.message.refusal[:200]}", raw=raw, cost_usd=cost, model=model,
                                 **usage)
        if choice.finish_reason == "length":
            raise TeacherFailure("truncated answer (finish_reason length): raise --vlm.max_output_tokens",
                                 raw=raw, cost_usd=cost, model=model, **usage)
        if choice.finish_reason == "content_filter":
            raise TeacherFailure("refused (finish_reason content_filter)", raw=raw, cost_usd=cost, model=model,
                                 **usage)
        return self.verdict_from_text(video, choice.message.content or "", raw, model, **usage)


    # --- the Batch API (`hiddenemo.teacher.batch`): a JSONL file of chat requests, one job -------------

    def batch_submit(self, todo: list) -> dict:
        """Upload the requests as a JSONL file (purpose batch) and create one batch over it."""
        from tqdm import tqdm

        lines, failures = [], {}
        for video, _ in tqdm(todo, desc="frames for batch", unit="video"):
            try:
                body = self._request(video)
            except TeacherFailure as e:           # an unreadable video never stops the job
                failures[video.video_id] = e.reason
                continue
            lines.append(json.dumps({"custom_id": video.video_id, "method": "POST", "url": BATCH_ENDPOINT,
                                     "body": body}))
        if not lines:
            return {"id": None, "uploads": [], "failed": failures}
        data = ("\n".join(lines) + "\n").encode()
        uploaded = self.retrying(lambda: self._call(fn=self.client.files.create, purpose="batch",
                                                    file=("hiddenemo-batch.jsonl", data)), "files.create")
        batch = self.retrying(lambda: self._call(fn=self.client.batches.create, input_file_id=uploaded.id,
                                                 endpoint=BATCH_ENDPOINT, completion_window="24h",
                                                 metadata={"producer": "hiddenemo"}), "batches.create")
        return {"id": batch.id, "uploads": [uploaded.id], "failed": failures}

    def batch_state(self, job: dict):
        from hiddenemo.teacher.batch import BatchState

        batch = self._call(fn=self.client.batches.retrieve, batch_id=job["id"])
        c = batch.request_counts
        return BatchState(batch.status, batch.status in BATCH_DONE,
                          f"{c.completed + c.failed} of {c.total} done, {c.failed} failed" if c else "")

    def batch_results(self, job: dict) -> dict:
        """video_id -> verdict or failure, from the output file (answers) and the error file (failures)."""
        from openai.types.chat import ChatCompletion

        from hiddenemo.teacher.batch import answer_or_failure

        batch = self.retrying(lambda: self._call(fn=self.client.batches.retrieve, batch_id=job["id"]), "batches.retrieve")
        videos = {v.video_id: v for v in manifest_videos(self.work, list(job["videos"]))}
        out = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            job["uploads"].append(file_id)                 # the result files go too, with the input
            text = self.retrying(lambda: self._call(fn=self.client.files.content, file_id=file_id),
                                 f"files.content {file_id}").text
            for line in filter(str.strip, text.splitlines()):
                item = json.loads(line)
                video_id, response = item.get("custom_id"), item.get("response") or {}
                if video_id not in videos:
                    continue
                body = response.get("body") or {}
                if item.get("error") or response.get("status_code") != 200:
                    error = item.get("error") or body.get("error") or {}
                    out[video_id] = TeacherFailure(f"batch item failed: HTTP {response.get('status_code')} "
                                                   f"{error.get('code') or ''} {error.get('message') or ''}".strip(),
                                                   raw=json.dumps(body))
                else:
                    out[video_id] = answer_or_failure(self._completion_verdict, videos[video_id], json.dumps(body),
                                                      lambda body=body: ChatCompletion.model_validate(body))
        return out

    def batch_cleanup(self, job: dict) -> None:
        for file_id in job["uploads"]:
            self.client.files.delete(file_id)


def frame_times(cfg: VlmConfig, duration_s: float | None) -> np.ndarray:
    """Times (s) of the frames to send: every 1/fps seconds over the clip, thinned evenly to max_frames."""
    start, end = cfg.clip(duration_s)
    end = end if end is not None else start + cfg.max_frames / cfg.fps
    times = np.arange(start, end, 1.0 / cfg.fps)
    if len(times) > cfg.max_frames:
        times = np.linspace(start, end, cfg.max_frames, endpoint=False)
    return times


def sample_frames(path: Path, cfg: VlmConfig, duration_s: float | None) -> list[tuple[float, bytes]]:
    """(time, JPEG bytes) of the sampled frames; seeks to each time rather than decoding the whole video."""
    import av

    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        raise TeacherFailure(f"cannot open video {path}: {e}") from None
    out = []
    with container:
        stream = container.streams.video[0]
        if duration_s is None and stream.duration is not None:
            duration_s = float(stream.duration * stream.time_base)
        for t in frame_times(cfg, duration_s):
            container.seek(int(t / stream.time_base), stream=stream, backward=True)
            frame = next((f for f in container.decode(stream) if f.time is None or f.time >= t - 1e-3), None)
            if frame is None:
                continue
            image = frame.to_image()
            image.thumbnail((cfg.frame_size, cfg.frame_size))
            buf = io.BytesIO()
            image.save(buf, format="JPEG", quality=85)
            out.append((float(frame.time if frame.time is not None else t), buf.getvalue()))
    if not out:
        raise TeacherFailure(f"no frames could be decoded from {path}")
    return out
