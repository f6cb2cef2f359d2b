"""A small text-only dataset written by a script: a labels CSV (train labeled, target blank) and a
teacher file of texts, with the target's true labels kept apart for independent scoring.

Each text is a neutral sentence shared by all classes plus one or two cue phrases drawn from a
pool per class; a `noise` share of the videos draw their cues from another class (the teacher
misread them). The pools paraphrase one another (restless / fidgety / on edge): a reader who knows
what words mean can place a phrase it never saw in training, which counting words cannot; with 60
training texts most of the 20 phrases per class are seen at least once, so counting words does well
too. A constructed example: its figures say that the pipeline works, nothing about real teacher texts.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

NEUTRAL = [
    "The interviewee answers a question about the last match.",
    "A reporter asks about the next round of the tournament.",
    "The player sits at a table with a microphone in front.",
    "The answer is about training and the coming season.",
    "The interview takes place in a small press room.",
    "The speaker looks at the journalists while answering.",
]
CUES = {
    "calm": ["seems relaxed", "looks at ease", "appears composed", "is serene", "speaks unhurriedly",
             "sits comfortably", "looks content", "is tranquil", "smiles easily", "appears untroubled",
             "breathes slowly and evenly", "keeps a peaceful expression", "shows a settled posture",
             "is laid-back", "looks carefree", "answers with quiet confidence", "has loose shoulders",
             "gives a warm grin", "seems cheerful", "looks pleased"],
    "tense": ["seems restless", "looks on edge", "appears fidgety", "is jittery", "speaks hurriedly",
              "shifts in the seat", "looks uneasy", "is agitated", "bites the lips", "appears troubled",
              "breathes quickly", "keeps a strained expression", "shows a rigid posture", "is wound up",
              "looks anxious", "answers with a shaky voice", "has raised shoulders", "clenches the jaw",
              "seems nervous", "looks stressed"],
    "sad": ["seems downcast", "looks gloomy", "appears dejected", "is tearful", "speaks in a low flat voice",
            "slumps in the chair", "looks heartbroken", "is crestfallen", "stares at the floor", "appears sorrowful",
            "sighs deeply", "keeps a mournful expression", "shows a drooping posture", "is despondent",
            "looks miserable", "answers with a trembling voice", "has sagging shoulders", "wipes the eyes",
            "seems melancholy", "looks disappointed"],
}


def texts_example(out: Path, classes=("calm", "tense"), n_train: int = 60, n_target: int = 60,
                  noise: float = 0.15, seed: int = 0, probs: bool = False) -> dict:
    """Write OUT/labels.csv and OUT/teacher.csv (with p_<class> columns when `probs`: the teacher's
    belief, right about as often as its texts); returns paths and the target's true labels."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    n = n_train + n_target
    truth = [classes[i % len(classes)] for i in rng.permutation(n)]
    rows, teacher = [], []
    for i, label in enumerate(truth):
        video_id = f"v{i:03d}"
        seen = label if rng.random() >= noise else str(rng.choice([c for c in classes if c != label]))
        cues = rng.choice(CUES[seen], size=int(rng.integers(1, 3)), replace=False)
        text = f"{rng.choice(NEUTRAL)} The person {' and '.join(cues)}."
        rows.append({"video_id": video_id, "label": label if i < n_train else "",
                     "subject_id": f"s{i // 3:02d}"})
        record = {"video_id": video_id, "text": text}
        if probs:
            sure = rng.uniform(0.55, 0.95)
            record.update({f"p_{c}": round(sure if c == seen else (1 - sure) / (len(classes) - 1), 4)
                           for c in classes})
            record[f"p_{seen}"] = round(1 - sum(v for k, v in record.items() if k.startswith("p_") and k != f"p_{seen}"), 4)
        teacher.append(record)
    _write_csv(out / "labels.csv", rows)
    _write_csv(out / "teacher.csv", teacher)
    (out / "target_truth.json").write_text(json.dumps({r["video_id"]: t for r, t in zip(rows, truth)
                                                       if not r["label"]}))
    return {"labels": out / "labels.csv", "teacher": out / "teacher.csv",
            "truth": {r["video_id"]: t for r, t in zip(rows, truth) if not r["label"]}}


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
