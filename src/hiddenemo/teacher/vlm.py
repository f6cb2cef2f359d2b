"""What the two VLM backends share: the rendered prompt, the cache inputs, the cost estimate and
turning the model's JSON text into a verdict. A backend only adds the provider's transport."""
from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from hiddenemo.data.manifest import DatasetInfo
from hiddenemo.teacher import prompts
from hiddenemo.teacher.config import VlmConfig
from hiddenemo.teacher.retry import RateGate, TeacherFailure, call_with_retries
from hiddenemo.teacher.runner import MissingInput, Teacher, Video
from hiddenemo.teacher.schema import Verdict, VlmAnswer
from hiddenemo.teacher.store import file_hash
from hiddenemo.teacher.texts import answer_texts, fmt_time


MAX_ANSWER_CHARS = 100_000     # a full CoT + Reflection answer is a few thousand characters


class VlmTeacher(Teacher):
    default_model = ""

    def __init__(self, work: Path, info: DatasetInfo, cfg: VlmConfig, batch: bool = False):
        super().__init__(work, info)
        self.cfg = cfg.check()
        self.batch = batch          # asked through the provider's batch API (`hiddenemo.teacher.batch`)
        self.price_factor = 1.0 - cfg.batch_discount if batch else 1.0
        self.model = cfg.model or self.default_model
        self.prompt_version = cfg.prompt
        self.concurrency = cfg.concurrency
        self.gate = RateGate()
        prompts.render(cfg.prompt, info.classes, self.positive)  # fail now on a missing prompt file
        self._hashes: dict[str, str] = {}

    def params(self) -> dict:
        return {**super().params(), **self.cfg.answer_params()}

    def video_file(self, video: Video) -> Path:
        if not video.path:
            raise MissingInput(f"video {video.video_id}: the manifest has no video file, which the "
                               f"{self.name} teacher needs (use the behaviour or annotations teacher)")
        path = Path(video.path)
        if not path.is_absolute() and not path.exists():
            path = self.work / path
        if not path.is_file():
            raise MissingInput(f"video {video.video_id}: video file {path} not found; fix the path in the "
                               "manifest or restore the file")
        return path

    def content_hash(self, video: Video) -> str:
        if video.video_id not in self._hashes:
            self._hashes[video.video_id] = file_hash(self.video_file(video))
        return self._hashes[video.video_id]

    def prompt(self, video: Video) -> str:
        start, end = self.cfg.clip(video.duration_s)
        context = ""
        if video.duration_s:
            context = (f"You see {fmt_time(start)} to {fmt_time(end)} of a {fmt_time(video.duration_s)} "
                       "video; give times from the start of the video.")
        return prompts.render(self.prompt_version, self.info.classes, self.positive, context)

    def n_frames_seen(self, video: Video) -> int:
        start, end = self.cfg.clip(video.duration_s)
        return max(1, int(((end or start + 60.0) - start) * self.cfg.fps))

    def estimate(self, video: Video) -> dict:
        start, end = self.cfg.clip(video.duration_s)
        seconds = (end or start + 60.0) - start
        n_in = (self.n_frames_seen(video) * self.cfg.tokens_per_frame
                + int(seconds * self.cfg.audio_tokens_per_s) + len(self.prompt(video)) // 4)
        n_out = max(self.cfg.thinking_budget, 0) + self.cfg.answer_tokens
        return {"input_tokens": n_in, "output_tokens": n_out, "cost_usd": self.cost(n_in, n_out)}

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """US$ of these tokens at the online price, or the batch price in batch mode."""
        return self.cfg.cost(input_tokens, output_tokens) * self.price_factor

    def retrying(self, fn, what: str):
        return call_with_retries(fn, max_retries=self.cfg.max_retries, backoff_s=self.cfg.backoff_s,
                                 max_backoff_s=self.cfg.max_backoff_s, gate=self.gate, what=what)

    def verdict_from_text(self, video: Video, text: str, raw: str, model: str, input_tokens: int,
                          output_tokens: int, thinking_tokens: int) -> Verdict:
        """Parse and check the model's JSON; a malformed or off-schema answer is a TeacherFailure."""
        usage = dict(input_tokens=input_tokens, output_tokens=output_tokens, thinking_tokens=thinking_tokens,
                     cost_usd=self.cost(input_tokens, output_tokens + thinking_tokens), model=model)
        if len(text) > MAX_ANSWER_CHARS:
            # A runaway or hostile answer: refuse it rather than store megabytes in every verdict.
            raise TeacherFailure(f"oversized answer: {len(text):,} characters (limit {MAX_ANSWER_CHARS:,})",
                                 raw=raw[:MAX_ANSWER_CHARS], **usage)
        try:
            answer = VlmAnswer.model_validate(json.loads(_strip_fence(text)))
        except (json.JSONDecodeError, ValidationError) as e:
            first = str(e).splitlines()[0][:200]
            raise TeacherFailure(f"malformed answer (not JSON in the answer schema): {first}", raw=raw,
                                 **usage) from None
        names = {c.lower(): c for c in self.info.classes}
        if answer.verdict.strip().lower() not in names:
            raise TeacherFailure(f"malformed answer: verdict {answer.verdict!r} is not one of "
                                 f"{self.info.classes}", raw=raw, **usage)
        if not 0.0 <= answer.confidence_positive <= 1.0:
            raise TeacherFailure(f"malformed answer: confidence {answer.confidence_positive} outside [0, 1]",
                                 raw=raw, **usage)
        full, free = answer_texts(answer, self.info.classes, self.positive)
        # As the paper: the label is the class with the higher confidence.
        p = float(answer.confidence_positive)
        return Verdict(video_id=video.video_id, teacher_id=self.name, p_positive=p, label=self.label_for(p),
                       observations=answer.observations, text=full, text_verdict_free=free, raw=raw, **usage)


def _strip_fence(text: str) -> str:
    """Some OpenAI-compatible servers wrap JSON in a ``` fence even in JSON mode."""
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text
