"""The `import` teacher: verdicts written elsewhere (a colleague's VLM run, a provider's batch job,
texts published with a paper), read from a file instead of asked here.

The file is CSV (with a header) or JSONL (one object per line, `.jsonl` / `.ndjson`), with
`video_id` and `text`, and optionally `label` (a class name) or `p_<class>` columns (one per class
of the workspace, summing to one). It is checked whole before anything is written, and every
problem names its row (CSV: the line number; JSONL: the line): a video id not in the workspace, a
class it does not have, probabilities that are not a distribution, an empty text. A video of the
workspace the file does not cover is reported `without input`, as a video without pose is to the
behaviour teacher.

Then it is a teacher like the others: each row is a verdict in `WORK/teacher/<teacher_id>.jsonl`,
cached by the row's content (importing the same file again writes nothing; a changed row is written
anew), and `embed --teacher <teacher_id>` encodes its texts. The text is used as written in both
text variants: if it states the answer, `verdict_free` cannot hide it, so import texts that do not.
A file without labels or probabilities gives texts only, and training takes no pseudo-labels from it.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hiddenemo.data.manifest import DatasetInfo
from hiddenemo.data.workspace import Workspace
from hiddenemo.errors import UserError
from hiddenemo.teacher.runner import MissingInput, Teacher, Video
from hiddenemo.teacher.schema import PROB_TOLERANCE, Verdict

MAX_PROBLEMS = 10


@dataclass(frozen=True)
class ImportedRow:
    text: str
    label: str | None
    probs: dict[str, float] | None
    where: str                      # "line 7": where the row is in the file, for messages


class ImportedTeacher(Teacher):
    name = "import"
    model = "imported"

    def __init__(self, work: Path, info: DatasetInfo, source: Path | None):
        # No Teacher.__init__ class check: a file of texts alone needs no class names.
        self.work, self.info = Path(work), info
        self.positive = info.positive or (info.classes[-1] if info.classes else None)
        if source is None:
            raise UserError("the import teacher reads a file: pass --from FILE (CSV or JSONL with video_id, text "
                            "and optionally label or p_<class> columns)")
        self.source = Path(source)
        self.rows = read_import(self.source, Workspace(work).manifest, info.classes)

    def content_hash(self, video: Video) -> str:
        row = self.rows.get(video.video_id)
        if row is None:
            raise MissingInput(f"video {video.video_id}: no row in {self.source}")
        # The id belongs in the content: two videos with the same text are still two answers.
        blob = json.dumps({"video_id": video.video_id, "text": row.text, "label": row.label, "probs": row.probs},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def ask(self, video: Video) -> Verdict:
        row = self.rows[video.video_id]
        probs = row.probs or ({c: float(c == row.label) for c in self.info.classes} if row.label else None)
        label = row.label or (max(probs, key=probs.get) if probs else None)
        p_positive = probs[self.positive] if probs and len(self.info.classes) == 2 else None
        return Verdict(video_id=video.video_id, teacher_id=self.name, p_positive=p_positive, label=label,
                       probs=probs, text=row.text, text_verdict_free=row.text, raw=json.dumps(
                           {"source": str(self.source), "at": row.where}))


def read_import(path: Path, manifest: pd.DataFrame, classes: list[str]) -> dict[str, ImportedRow]:
    """video_id -> row of a teacher file, every problem of the whole file named in one UserError."""
    table, where = _read_table(path)
    if "video_id" not in table.columns or "text" not in table.columns:
        raise UserError(f"{path} lacks column(s) {[c for c in ('video_id', 'text') if c not in table.columns]}: a "
                        "teacher file has video_id and text, and optionally label or p_<class> columns")
    prob_columns = [c for c in table.columns if c.startswith("p_")]
    unknown = sorted(c[2:] for c in prob_columns if c[2:] not in classes)
    if unknown or (prob_columns and len(prob_columns) != len(classes)):
        raise UserError(f"{path}: probability columns must be p_<class> for each class of the workspace "
                        f"{classes}; found {prob_columns}"
                        + (f" (unknown class(es) {unknown})" if unknown else ""))
    known_ids = _id_lookup(manifest)
    rows, problems, seen = {}, [], {}
    for i, record in enumerate(table.to_dict("records")):
        at = where(i)
        video_id, text = _text(record.get("video_id")), _text(record.get("text"))
        if not video_id:
            problems.append(f"{at}: empty video_id")
            continue
        if video_id not in known_ids:
            problems.append(f"{at}: video id {video_id!r} is not in the workspace's manifest")
            continue
        video_id = known_ids[video_id]
        if video_id in seen:
            problems.append(f"{at}: video {video_id!r} again (first on {seen[video_id]}); keep one row per video")
            continue
        seen[video_id] = at
        if not text:
            problems.append(f"{at}: video {video_id!r} has an empty text")
        label = _text(record.get("label")) or None
        if label is not None and label not in classes:
            problems.append(f"{at}: label {label!r} is not a class of the workspace {classes}")
        probs, bad = _probs(record, classes, prob_columns)
        if bad:
            problems.append(f"{at}: {bad}")
        rows[video_id] = ImportedRow(text=text, label=label, probs=probs, where=at)
    if problems:
        raise UserError(f"{path}: {len(problems)} problem(s), nothing imported:\n  "
                        + "\n  ".join(problems[:MAX_PROBLEMS]) + ("\n  ..." if len(problems) > MAX_PROBLEMS else ""))
    if not rows:
        raise UserError(f"{path} has no rows")
    return rows


def _read_table(path: Path):
    """(table of strings and numbers, row index -> where it is in the file)."""
    if not path.is_file():
        raise UserError(f"teacher file {path} does not exist")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        records, lines = [], []
        for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path} line {n} is not JSON ({e.msg}): one object per line") from None
            if not isinstance(record, dict):
                raise UserError(f"{path} line {n} is not a JSON object: one object per line")
            records.append(record)
            lines.append(n)
        return pd.DataFrame(records), lambda i: f"line {lines[i]}"
    from hiddenemo.data.imigue import _read_csv

    return _read_csv(path, "teacher file"), lambda i: f"line {i + 2}"


def _id_lookup(manifest: pd.DataFrame) -> dict[str, str]:
    """An id as the file may write it -> the workspace's id (a derived id's original spelling too)."""
    ids = {str(v): str(v) for v in manifest["video_id"]}
    if "source_id" in manifest.columns:
        ids.update({str(s): str(v) for s, v in zip(manifest["source_id"], manifest["video_id"]) if pd.notna(s)})
    return ids


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _probs(record: dict, classes: list[str], columns: list[str]) -> tuple[dict[str, float] | None, str | None]:
    """(class -> probability, None) or (None, what is wrong); all blank = no probabilities on this row."""
    values = {c[2:]: _text(record.get(c)) for c in columns}
    if not any(values.values()):
        return None, None
    try:
        probs = {c: float(values[c]) for c in classes}
    except ValueError:
        return None, f"probabilities {values} are not all numbers"
    if any(not 0.0 <= p <= 1.0 for p in probs.values()):
        return None, f"probabilities {probs} must each lie in [0, 1]"
    total = sum(probs.values())
    if abs(total - 1.0) > PROB_TOLERANCE:
        return None, f"probabilities {probs} sum to {total:.4f}, not 1"
    return probs, None
