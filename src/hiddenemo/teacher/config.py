"""Settings of the teachers and of their pseudo-labels, one dataclass each; their attribute docstrings
are the `--help` text. `VlmConfig`: the VLM teachers (`gemini`, `openai`) of `hiddenemo teach`; prices
are per million tokens and only feed the cost estimate and the counts in the verdicts; check your
provider's current price list. `PseudoLabelPolicy`: how `hiddenemo train` turns a teacher's verdicts
into stage-2 targets (`pseudo.policy`; applied by `hiddenemo.teacher.policy`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from hiddenemo.errors import UserError
from hiddenemo.teacher.prompts import DEFAULT_PROMPT


@dataclass
class VlmConfig:
    model: str = ""
    """Model name; empty = the backend's default (gemini: gemini-2.5-pro; openai: required)."""
    base_url: str | None = None
    """API endpoint; empty = the provider's (for openai: your vLLM/Ollama server, e.g. http://host:8000/v1)."""
    prompt: str = DEFAULT_PROMPT
    """Prompt version (a file under hiddenemo/prompts/)."""
    fps: float = 1.0
    """Frames per second the model sees (gemini: video_metadata.fps; openai: frames sampled and sent)."""
    start_s: float | None = None
    """Clip start in seconds (None = from the beginning)."""
    end_s: float | None = None
    """Clip end in seconds (None = to the end)."""
    max_frames: int = 32
    """openai: at most this many frames per video (spread evenly when fps would give more)."""
    frame_size: int = 512
    """openai: long side of each frame sent, in pixels."""
    temperature: float = 0.0
    """Sampling temperature (0 = as deterministic as the provider allows)."""
    max_output_tokens: int = 8192
    """Output token limit; on Gemini 2.5 it includes the thinking tokens."""
    thinking_budget: int = 2048
    """gemini: thinking tokens (-1 = dynamic, 0 = off where allowed); must leave answer_tokens free."""
    answer_tokens: int = 2048
    """Tokens kept free for the JSON answer below max_output_tokens (also the output estimate)."""
    concurrency: int = 2
    """Videos asked at the same time."""
    max_retries: int = 5
    """Retries of a 429 / 5xx / dropped connection before the video is recorded as failed."""
    backoff_s: float = 2.0
    """First back-off after a 5xx (doubles each retry, with jitter)."""
    max_backoff_s: float = 120.0
    """Longest single wait, also the cap on a server's requested retry delay."""
    timeout_s: float = 600.0
    """Timeout of one HTTP request."""
    poll_s: float = 2.0
    """gemini: interval between checks that an uploaded video is ACTIVE."""
    max_poll_s: float = 600.0
    """gemini: give up on a video whose upload is not ACTIVE after this long."""
    tokens_per_frame: int = 258
    """Input tokens per video frame or image (Gemini's default media resolution: 258)."""
    audio_tokens_per_s: int = 32
    """gemini: input tokens per second of audio (0 for the openai backend, which sends frames only)."""
    price_input_per_mtok: float = 1.25
    """US$ per million input tokens (Gemini 2.5 Pro, prompts up to 200k tokens)."""
    price_output_per_mtok: float = 10.0
    """US$ per million output tokens, thinking included (Gemini 2.5 Pro)."""
    batch_discount: float = 0.5
    """Share of the online price a batch job (`teach --batch`) saves: 0.5 at both Gemini and OpenAI."""
    batch_poll_s: float = 60.0
    """teach --batch: interval between checks of the job's state."""
    batch_wait_s: float = 86400.0
    """teach --batch: how long this process waits for the job (the providers finish within 24 h); after
    that it exits, and a later `teach` collects the same job."""

    def check(self) -> "VlmConfig":
        if self.thinking_budget > 0 and self.thinking_budget + self.answer_tokens > self.max_output_tokens:
            raise UserError(
                f"thinking_budget {self.thinking_budget} + answer_tokens {self.answer_tokens} exceeds "
                f"max_output_tokens {self.max_output_tokens}: the thinking would leave no room for the "
                "answer (a truncated MAX_TOKENS reply). Raise --vlm.max_output_tokens or lower the budget.")
        if self.fps <= 0:
            raise UserError(f"--vlm.fps must be positive, got {self.fps}")
        if not 0.0 <= self.batch_discount < 1.0:
            raise UserError(f"--vlm.batch_discount must lie in [0, 1), got {self.batch_discount}")
        if self.start_s is not None and self.end_s is not None and self.end_s <= self.start_s:
            raise UserError(f"--vlm.end_s ({self.end_s}) must be after --vlm.start_s ({self.start_s})")
        return self

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.price_input_per_mtok + output_tokens * self.price_output_per_mtok) / 1e6

    def answer_params(self) -> dict:
        """The settings that change an answer (part of the cache key); limits and prices are not."""
        keep = ("fps", "start_s", "end_s", "max_frames", "frame_size", "temperature", "max_output_tokens",
                "thinking_budget")
        return {k: v for k, v in asdict(self).items() if k in keep}

    def clip(self, duration_s: float | None) -> tuple[float, float | None]:
        """(start, end) seconds of the part of the video the model sees."""
        start = self.start_s or 0.0
        end = self.end_s if self.end_s is not None else duration_s
        if duration_s is not None and end is not None:
            end = min(end, duration_s)
        return start, end


@dataclass
class PseudoLabelPolicy:
    """How a teacher's verdicts on the unlabeled videos become stage-2 targets and weights."""

    threshold: float = 0.5
    """A video counts as positive when the teacher's p_positive >= threshold."""
    min_confidence: float = 0.0
    """Keep only videos whose teacher confidence max(p, 1 - p) reaches this (0.5-1; 0 keeps all)."""
    mode: Literal["hard", "soft"] = "hard"
    """hard: target 0/1 by the threshold; soft: target = the teacher's p_positive."""
    weight: float = 1.0
    """Loss weight of each pseudo-labeled video (labeled videos weigh 1)."""
    class_balance: bool = False
    """Reweight so that both classes carry the same total weight (mean weight stays `weight`)."""
    calibrate: bool = False
    """Platt-scale the teacher's p_positive on the labeled training videos before thresholding: a
    rule-based or VLM teacher that ranks well but is biased to one class then gives pseudo-labels at
    the training prior. Uses training labels only (never a test label)."""
    balanced: bool = False
    """With calibrate, hard: a video is positive when its calibrated p_positive reaches the labeled
    training videos' positive share instead of `threshold` — the balanced-accuracy decision. At 0.5, a
    teacher calibrated to a skewed prior calls almost every video the majority class, and its
    pseudo-labels then say nothing about the rarer class (the teacher-noise study, docs/training.md)."""

    def __post_init__(self):
        if self.mode not in ("hard", "soft"):
            raise UserError(f"pseudo-label mode must be 'hard' or 'soft', got {self.mode!r}")
        if not 0.0 <= self.threshold <= 1.0 or not 0.0 <= self.min_confidence <= 1.0:
            raise UserError("threshold and min_confidence must lie in [0, 1]")
        if self.balanced and not self.calibrate:
            raise UserError("pseudo-label policy balanced: true needs calibrate: true (the decision is taken "
                             "on the teacher's probabilities calibrated on the labeled training videos)")
