"""An exported model on new videos, without a workspace: `hiddenemo apply` and `hiddenemo.load_model`.

Apply keeps a workspace of its own in the cache, `CACHE/<recipe fingerprint>/`: the model's classes,
a manifest of the videos given, and a store that the same library functions as in training fill —
extraction (`extract.runner.extract_all`), the teacher (`teacher.runner.run`), the text embedding
(`teacher.embed.embed_verdicts`) — before voting inference exactly as `predict` runs it
(`train.predict.predict_videos`). Each skips what is current, so a second apply on the same videos
reads the cache. A video's cached arrays belong to its file's content (sha256): a changed file under
the same name starts over.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from hiddenemo.data.folder import VIDEO_EXTENSIONS, find_videos
from hiddenemo.data.manifest import read_manifest, write_manifest
from hiddenemo.data.ids import check_video_id
from hiddenemo.data.store import Store, atomic_write_text
from hiddenemo.errors import UserError
from hiddenemo.export.bundle import ModelDir, person_relative, plain
from hiddenemo.export.recipe import ARRAYS, TEACHER_INPUTS, check_packages, drop_per_video
from hiddenemo.extract.config import cache_dir
from hiddenemo.teacher.config import VlmConfig
from hiddenemo.teacher.store import file_hash

log = logging.getLogger(__name__)


@dataclass
class ApplyOptions:
    """Where apply keeps its features, and what stands in for inputs a new video does not have."""

    cache: Path | None = None
    """Feature cache (default: $HIDDENEMO_CACHE/apply, else ~/.cache/hiddenemo/apply); a second apply
    on the same videos reads its features from here."""
    openpose: Path | None = None
    """For a model whose keypoints came from OpenPose JSON: the folder with one sub-folder of
    OpenPose JSON per video id (as `dataset imigue --openpose`)."""
    keypoints: Literal["recorded", "mediapipe"] = "recorded"
    """recorded = the model's own keypoint extractor; mediapipe = MediaPipe Holistic for a model
    trained on OpenPose JSON when the new videos have none (another extractor: probabilities shift)."""
    annotations: Path | None = None
    """For a model with the `events` modality: the timed gesture annotations of the new videos
    (iMiGUE labels CSV format)."""
    without: list[str] = field(default_factory=list)
    """Modalities to predict without (given to the model as missing, as for a training video
    lacking them), e.g. [events] for new videos without annotations."""
    subjects: Path | None = None
    """For a model with person-relative statistics (`pooled.person_baseline: subject`): a CSV with
    `video_id` and `subject_id` for every video given (other columns are ignored, so a `dataset folder`
    labels file serves). Each person's statistics are measured against that person's videos among
    those given in the same call (so give several videos of each person)."""
    vlm: VlmConfig = field(default_factory=VlmConfig)
    """For an API teacher: endpoint and limits (its model and prompt are the model's own)."""
    workers: int = 1
    """Videos extracted at once, each in its own process."""


class Model:
    """An exported model, loaded: `predict(paths)` gives one row per video."""

    def __init__(self, directory: str | Path):
        self.dir = ModelDir(Path(directory))

    @property
    def classes(self) -> list[str]:
        return self.dir["classes"]

    def predict(self, paths, options: ApplyOptions | None = None, **overrides) -> pd.DataFrame:
        """video_id, predicted_class, p_<class>..., n_votes, vote_std for the video files (or folders of
        videos) in `paths`; a video that failed has no predicted class and NaN probabilities (its reason is
        in `table.attrs["failed"]`). Options: `ApplyOptions` fields, e.g. `cache=...`."""
        table, explained = self.apply(paths, options, **overrides)
        table.attrs["explained"] = explained
        return table

    def apply(self, paths, options: ApplyOptions | None = None, **overrides) -> tuple[pd.DataFrame, dict]:
        """(the prediction table, per video the JSON of what drove its prediction)."""
        options = options or ApplyOptions(**overrides)
        videos = collect_videos(paths)
        plan = _Plan(self.dir, options)
        work = plan.workspace(videos)
        failed = plan.make_inputs(work, videos)
        ok = [v for v in videos if v not in failed]
        table, explained = plan.predict(work, ok) if ok else (None, {})
        rows = [table] if table is not None else []
        if failed:
            rows.append(pd.DataFrame({"video_id": list(failed)}))
        table = pd.concat(rows, ignore_index=True).reindex(columns=self.dir.table_columns())
        table = table.set_index("video_id").loc[list(videos)].reset_index().astype({"n_votes": "Int64"})
        for video_id, reason in failed.items():
            explained[video_id] = {"video_id": video_id, "path": str(videos[video_id]), "failed": reason}
        table.attrs["failed"] = failed
        return table, explained


def load_model(directory: str | Path) -> Model:
    """The exported model in `directory` (written by `hiddenemo export`)."""
    return Model(directory)


def collect_videos(paths) -> dict[str, Path]:
    """video_id (file name without extension) -> file, for video files and folders of them."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    found: dict[str, Path] = {}
    for path in map(Path, paths):
        if path.is_dir():
            here = find_videos(path)
            if not here:
                raise UserError(f"{path} holds no video files (extensions: {', '.join(VIDEO_EXTENSIONS)}); "
                                "give a folder of videos or one video file")
        elif path.is_file():
            here = {check_video_id(path.stem): path}
        else:
            raise UserError(f"{path} does not exist: give a folder of videos or one video file")
        for video_id, file in here.items():
            if video_id in found and found[video_id].resolve() != file.resolve():
                raise UserError(f"two videos share the id {video_id!r} ({found[video_id]}, {file}): a video's id is "
                                "its file name without extension; rename one")
            found[video_id] = file
    if not found:
        raise UserError("no videos given")
    return found


class _Plan:
    """What this model needs of a new video, and the steps that make it."""

    def __init__(self, model: ModelDir, options: ApplyOptions):
        self.model, self.options = model, options
        self.substituted: str | None = None
        recipe = model["recipe"]
        modalities = model["modalities"]
        unknown = sorted(set(options.without) - set(modalities))
        if unknown:
            raise UserError(f"--without {unknown}: this model reads only {modalities}")
        self.modalities = [m for m in modalities if m not in options.without]
        if not self.modalities:
            raise UserError(f"--without leaves none of the model's modalities {modalities}")
        self.relative = person_relative(model["transductive"], self.modalities)
        if self.relative and options.subjects is None:
            modality, note = next(iter(self.relative.items()))
            raise UserError(f"this model measures {note}: a new video has no such baseline. Give several videos of "
                            "each person with --subjects FILE (video_id, subject_id), or predict without that "
                            f"modality: --without '[{', '.join(self.relative)}]'; or train with "
                            "pooled.person_baseline: none or video-start to make a model a single video can use")
        if options.subjects is not None and not self.relative:
            log.warning("--subjects %s is not used: this model measures nothing against a person's other videos",
                        options.subjects)
        self.text = recipe["text"] if "text" in self.modalities else None
        names = [n for m in self.modalities for n in ARRAYS.get(m, [])]
        names += TEACHER_INPUTS.get(self.text["teacher"]["kind"], []) if self.text else []
        self.arrays = {n: recipe["arrays"][n] for n in dict.fromkeys(names)}
        self.extract = self._extract_settings(recipe["extract"])
        if "events" in self.arrays and options.annotations is None:
            raise UserError("this model reads the `events` modality (timed gesture annotations), which a video "
                            "alone does not have: give --annotations FILE (iMiGUE labels CSV format), or predict "
                            "without it: --without '[events]'")
        if self.substituted:
            log.warning("%s", self.substituted)
        if options.without:
            log.warning("predicting without %s: the model sees them as missing, as for a training video without "
                        "them (the cross-validated figures in its README.md do not cover this)", options.without)
        components = set(_components(self.extract, self.text))
        check_packages({d: p for d, p in recipe["packages"].items() if components & set(p["for"])})

    def _extract_settings(self, recorded: dict | None) -> dict | None:
        if not ({"box", "pose", "frames"} & set(self.arrays)):
            return None
        if recorded is None:
            made_by = {n: a["producer"] for n, a in self.arrays.items()}
            raise UserError(f"this model's arrays were made by {made_by}, which apply cannot run on a video; "
                            "export a model whose features come from `hiddenemo extract`")
        settings = dict(recorded)
        if "frames" not in self.arrays:
            settings["frames"] = "none"
        if settings["keypoints"] == "openpose-json":
            if self.options.openpose is not None and self.options.keypoints == "recorded":
                settings["openpose_dir"] = str(self.options.openpose)
            elif self.options.keypoints == "mediapipe":
                settings["keypoints"] = "mediapipe"
                self.substituted = ("keypoints: MediaPipe Holistic (mapped to the OpenPose 137 layout) instead of "
                                    "the OpenPose JSON the model was trained on; expect shifted probabilities")
            else:
                raise UserError("this model's keypoints came from OpenPose JSON: give --openpose DIR (one folder of "
                                "OpenPose JSON per video id), or --keypoints mediapipe to extract them with MediaPipe "
                                "Holistic instead (another extractor than in training)")
        return settings

    # ---- the workspace in the cache -------------------------------------------------------------
    def subject_ids(self, videos: dict[str, Path]) -> dict[str, str]:
        """video_id -> subject_id from `--subjects` for every video given ({} without it)."""
        path = self.options.subjects
        if path is None or not self.relative:
            return {}
        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, ValueError) as e:
            raise UserError(f"--subjects {path}: cannot read it as CSV ({e})") from e
        if not {"video_id", "subject_id"} <= set(table.columns):
            raise UserError(f"--subjects {path}: needs the columns video_id and subject_id; it has {list(table.columns)}")
        known = dict(zip(table["video_id"].str.strip(), table["subject_id"].str.strip()))
        missing = [v for v in videos if not known.get(v)]
        if missing:
            raise UserError(f"--subjects {path}: no subject_id for {len(missing)} of the videos given "
                            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); add a row for each")
        return {v: known[v] for v in videos}

    def workspace(self, videos: dict[str, Path]) -> Path:
        """CACHE/<fingerprint>/ with the model's classes and these videos in its manifest (with their
        `--subjects`); a video whose file changed since it was cached loses its cached arrays."""
        o = self.options
        subjects = self.subject_ids(videos)
        key = json.dumps({"arrays": self.arrays, "extract": self.extract, "text": self.text,
                          "openpose": str(o.openpose), "annotations": str(o.annotations)}, sort_keys=True, default=str)
        work = Path(o.cache or cache_dir() / "apply") / hashlib.sha256(key.encode()).hexdigest()[:16]
        work.mkdir(parents=True, exist_ok=True)
        self.model.info.save(work)
        sources_path = work / "sources.json"
        sources = json.loads(sources_path.read_text()) if sources_path.exists() else {}
        old = read_manifest(work).set_index("video_id") if (work / "manifest.parquet").exists() else None
        rows = []
        for video_id, path in videos.items():
            digest = file_hash(path)
            if sources.get(video_id) != digest:
                shutil.rmtree(Store(work).video_dir(video_id), ignore_errors=True)
                sources[video_id] = digest
            known = old is not None and video_id in old.index and sources.get(video_id) == digest
            fps, n_frames = (old.loc[video_id, "fps"], old.loc[video_id, "n_frames"]) if known else _probe(path)
            rows.append({"video_id": video_id, "path": str(path.resolve()), "split": "test", "fps": fps,
                         "n_frames": n_frames, "source": "apply", "subject_id": subjects.get(video_id, pd.NA)})
        table = pd.DataFrame(rows)
        if old is not None:
            table = pd.concat([old.drop(index=list(videos), errors="ignore").reset_index(), table], ignore_index=True)
        write_manifest(work, table)
        atomic_write_text(sources_path, json.dumps(sources, indent=1))
        return work

    # ---- the features -------------------------------------------------------------------------------
    def make_inputs(self, work: Path, videos: dict[str, Path]) -> dict[str, str]:
        """Extract, annotate, teach and embed what the model reads; returns {video_id: why it failed}."""
        ids = list(videos)
        teacher = self._teacher(work) if self.text else None     # before extraction: a missing key fails now
        failed: dict[str, str] = {}
        if self.extract is not None and not self._all_cached(work, ids):
            from hiddenemo.extract.config import ExtractConfig
            from hiddenemo.extract.runner import extract_all

            summary = extract_all(work, ExtractConfig(**self.extract), self.options.workers, ids)
            failed.update(summary["failures"])
            self._check_made(work, [v for v in ids if v not in failed])
        if "events" in self.arrays:
            self._events(work, [v for v in ids if v not in failed])
        if teacher is not None:
            self._texts(work, teacher, [v for v in ids if v not in failed])
        return failed

    def _extracted(self) -> dict[str, dict]:
        """The extraction arrays to compare with the recipe: {name: (producer, version, params)}. With
        substituted keypoints, box and pose are the substitute's, and frames sit on its boxes."""
        out = {}
        for name, recorded in self.arrays.items():
            if name in ("box", "pose", "frames") and not (self.substituted and name != "frames"):
                out[name] = _comparable(recorded, without_box=bool(self.substituted))
        return out

    def _all_cached(self, work: Path, ids: list[str]) -> bool:
        """Every video already has the recipe's arrays: extraction (and loading its models) is skipped."""
        if self.substituted:
            return False                 # the substitute's settings are known only to its extractor
        store, want = Store(work), self._extracted()
        return all(store.has(v, name) and _comparable(store.meta(v, name)) == recorded
                   for v in ids for name, recorded in want.items())

    def _check_made(self, work: Path, ids: list[str]) -> None:
        """The arrays this installation made must be the recipe's (same producer, version, settings)."""
        store = Store(work)
        for name, want in self._extracted().items():
            meta = next((store.meta(v, name) for v in ids if store.meta(v, name)), None)
            made = _comparable(meta, without_box=bool(self.substituted)) if meta else want
            if made != want:
                raise UserError(f"the `{name}` features made here differ from the model's recipe: recorded "
                                f"{json.dumps(want, sort_keys=True)}, made {json.dumps(made, sort_keys=True)}. An "
                                "extractor's version or settings differ: install the versions in the model's README.md")

    def _events(self, work: Path, ids: list[str]) -> None:
        from hiddenemo.data.imigue import read_annotations, write_events

        annotations = read_annotations(Path(self.options.annotations))
        by_video = {str(k): g for k, g in annotations.groupby(annotations["video_id"].astype(str))}
        manifest = read_manifest(work).set_index("video_id")
        rate = self.arrays["events"]["params"]["rate_hz"]
        store = Store(work)
        for video_id in ids:
            fps, n_frames = manifest.loc[video_id, "fps"], manifest.loc[video_id, "n_frames"]
            write_events(store, video_id, by_video.get(video_id, annotations.iloc[:0]),
                         0 if pd.isna(n_frames) else int(n_frames), 25.0 if pd.isna(fps) else float(fps), rate)

    def _teacher(self, work: Path):
        from hiddenemo.teacher.registry import make_teacher

        t = self.text["teacher"]
        vlm = VlmConfig(**{**vars(self.options.vlm), "model": t["model"], "prompt": t["prompt_version"]})
        teacher = make_teacher(t["kind"], work, vlm)
        if teacher.prompt_version != t["prompt_version"]:
            raise UserError(f"the model's texts came from the {t['kind']} teacher's prompt {t['prompt_version']!r}; "
                            f"this hiddenemo has {teacher.prompt_version!r}: install the hiddenemo that wrote the model")
        return teacher

    def _texts(self, work: Path, teacher, ids: list[str]) -> None:
        from hiddenemo.teacher import runner
        from hiddenemo.teacher.embed import embed_verdicts

        t = self.text["teacher"]
        runner.run(work, teacher, t["teacher_id"], runner.manifest_videos(work, ids))
        try:
            embed_verdicts(work, self.text["encoder"], t["teacher_id"], t["variant"], video_ids=ids)
        except UserError as e:               # no verdict for any of these videos: they predict without text
            log.warning("%s", e)

    # ---- the prediction ------------------------------------------------------------------------------
    def predict(self, work: Path, ids: list[str]) -> tuple[pd.DataFrame, dict]:
        from hiddenemo.train.data import videos_without_input
        from hiddenemo.train.predict import apply_threshold, predict_videos

        model, config = self.model, self.model.config
        if config.threads:
            import torch
            torch.set_num_threads(config.threads)
        modalities = model["modalities"]

        # Only this call's videos: a person's baseline must not depend on what earlier calls cached.
        manifest = read_manifest(work)
        manifest = manifest[manifest["video_id"].isin(ids)].reset_index(drop=True)

        many = model["positive"] is None                  # more than two classes: p_<class> columns, arg-max

        def run(leave_out: list[str]) -> pd.DataFrame:
            return predict_videos(work, manifest, ids, config, model.model_config, modalities, model["dims"],
                                  model.weights, fused=model["fused"], event_groups=model.info.extra.get("event_groups"),
                                  leave_out=[*self.options.without, *leave_out],
                                  classes=model["classes"] if many else None).set_index("video_id")

        if many:
            return self._predict_classes(work, ids, run, manifest)
        votes = run([])
        p = votes["p_positive"].to_numpy()
        threshold = apply_threshold(p, model["threshold"])
        positive, negative = model["positive"], next(c for c in model["classes"] if c != model["positive"])
        table = pd.DataFrame({"video_id": ids, "predicted_class": np.where(p >= threshold, positive, negative),
                              f"p_{negative}": 1 - p, f"p_{positive}": p, "n_votes": votes["n_votes"].to_numpy(),
                              "vote_std": votes["vote_std"].to_numpy()})
        store, encoder = Store(work), config.model.text_encoder
        present = {m: set(ids) - set(videos_without_input(store, ids, [m], encoder)) for m in self.modalities}
        moved = {m: run([m])["p_positive"] for m in self.modalities} if model["fused"] and len(self.modalities) > 1 else {}
        verdicts = self._verdicts(work)
        explained = {}
        for i, video_id in enumerate(ids):
            why = {"video_id": video_id, "predicted_class": table.loc[i, "predicted_class"], f"p_{positive}": float(p[i]),
                   "threshold": threshold, "threshold_method": model["threshold"]["method"], "model": model["source"],
                   "modalities": {m: {"present": video_id in present[m]} | (
                       {f"p_{positive}_without_it": float(moved[m][video_id]),
                        "moved_by": float(p[i] - moved[m][video_id])} if m in moved else {})
                       for m in self.modalities},
                   "left_out": list(self.options.without), "substituted": self.substituted,
                   **self._baseline(manifest, video_id),
                   "without_input": not any(video_id in present[m] for m in self.modalities)}
            if video_id in verdicts:
                v = verdicts[video_id]
                why["teacher"] = {"teacher_id": v.teacher_id, "model": v.model, "p_positive": v.p_positive,
                                  "text": v.text_variant(self.text["teacher"]["variant"])}
            explained[video_id] = why
        return table, explained

    def _baseline(self, manifest: pd.DataFrame, video_id: str) -> dict:
        """For a person-relative model: whose videos a video's statistics were measured against."""
        if not self.relative:
            return {}
        subject = manifest.loc[manifest["video_id"] == video_id, "subject_id"].iloc[0]
        same = manifest.loc[manifest["subject_id"] == subject, "video_id"].tolist()
        return {"person_baseline": {"subject_id": subject, "modalities": list(self.relative), "videos": same}}

    def _predict_classes(self, work: Path, ids: list[str], run, manifest: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
        """`predict` for more than two classes: the arg-max of the class probabilities (at the batch's EM
        class prior when the model's decision says so), and how much each modality moved the predicted
        class's probability."""
        from hiddenemo.train.data import videos_without_input
        from hiddenemo.train.predict import apply_decision, prob_columns

        model, classes = self.model, self.model["classes"]
        columns = prob_columns(classes)
        votes, decision = apply_decision(run([]).reset_index(), model["threshold"], classes)
        P = votes[columns].to_numpy()
        predicted = np.asarray(classes, dtype=object)[P.argmax(1)]
        table = pd.DataFrame({"video_id": ids, "predicted_class": predicted, **{c: votes[c].to_numpy() for c in columns},
                              "n_votes": votes["n_votes"].to_numpy(), "vote_std": votes["vote_std"].to_numpy()})
        store, encoder = Store(work), model.config.model.text_encoder
        present = {m: set(ids) - set(videos_without_input(store, ids, [m], encoder)) for m in self.modalities}
        moved = ({m: apply_decision(run([m]).reset_index(), model["threshold"], classes)[0].set_index("video_id")
                  for m in self.modalities} if model["fused"] and len(self.modalities) > 1 else {})
        explained = {}
        for i, video_id in enumerate(ids):
            c = f"p_{predicted[i]}"
            explained[video_id] = {
                "video_id": video_id, "predicted_class": predicted[i], **{k: float(votes[k].iloc[i]) for k in columns},
                "decision": decision, "model": model["source"],
                "modalities": {m: {"present": video_id in present[m]} | (
                    {f"{c}_without_it": float(moved[m].loc[video_id, c]),
                     "moved_by": float(P[i, classes.index(predicted[i])] - moved[m].loc[video_id, c])} if m in moved else {})
                    for m in self.modalities},
                "left_out": list(self.options.without), "substituted": self.substituted,
                **self._baseline(manifest, video_id),
                "without_input": not any(video_id in present[m] for m in self.modalities)}
        return table, explained

    def _verdicts(self, work: Path) -> dict:
        if not self.text:
            return {}
        from hiddenemo.teacher.store import read_verdicts
        return read_verdicts(work, self.text["teacher"]["teacher_id"])


def _comparable(sidecar: dict, without_box: bool = False) -> dict:
    """A sidecar's producer, version and settings, without what describes one video (and, for frames
    on substituted keypoints, without the box they sit on)."""
    params = drop_per_video(sidecar["params"])
    if without_box:
        params = {k: v for k, v in params.items() if k != "box"}
    return {"producer": sidecar["producer"], "version": sidecar["version"], "params": params}


def _components(extract: dict | None, text: dict | None) -> list[str]:
    from hiddenemo.export.recipe import needed_components
    return needed_components({"extract": extract, "text": text})


def _probe(path: Path) -> tuple[float, int | None]:
    """fps and frame count from the container header, as `dataset` records them (NaN/None if unreadable:
    extraction then names the problem)."""
    from hiddenemo.extract import decode
    try:
        info = decode.probe(path)
    except UserError:
        return float("nan"), None
    return (info.fps or float("nan")), (info.n_frames_hint or None)


def write_outputs(table: pd.DataFrame, explained: dict, out: Path) -> Path:
    """PRED.csv and PRED.explain/<video_id>.json; returns the folder of the JSON files."""
    out = Path(out)
    atomic_write_text(out, table.to_csv(index=False))
    folder = out.with_name(out.stem + ".explain")
    for video_id, why in explained.items():
        atomic_write_text(folder / f"{check_video_id(video_id)}.json", json.dumps(why, indent=2, default=plain))
    return folder
