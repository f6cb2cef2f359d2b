"""The model directory, `MODEL_DIR/`: the one writer (`export_run`) and reader (`ModelDir`) of a
trained model that travels without its workspace (docs/contracts.md, "Model directory").

    model.json          format version, classes, threshold and how it was chosen, the recipe, figures
    config.yaml         the run's resolved training config (sampling and voting are read from it)
    weights/member-<i>.safetensors   every model of the predicting ensemble (k folds, or one)
    README.md           the model card
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, replace
from functools import cached_property
from importlib import metadata
from pathlib import Path

import yaml

from hiddenemo.data.manifest import DatasetInfo, read_manifest
from hiddenemo.data.store import atomic_write_text
from hiddenemo.errors import UserError
from hiddenemo.rundir import Run
from hiddenemo.train.config import ModelConfig, TrainConfig, from_dict, to_dict

FORMAT = "hiddenemo-model"
FORMAT_VERSION = 1     # bump when a reader of an older version could misread a newer directory


def export_run(work: Path, run: str, out: Path, model: str | None = None) -> Path:
    """Write MODEL_DIR for the run's final model (or `model`, e.g. `stage1/pose`); refuses an
    unfinished run and a non-empty `out` that is not an earlier export."""
    from hiddenemo.eval.evaluate import evaluate_predictions
    from hiddenemo.export.card import model_card
    from hiddenemo.export.recipe import make_recipe

    work, out = Path(work), Path(out)
    source = Run(work, run)
    key = source.require_finished(model)
    config, info = source.config, DatasetInfo.load(work)
    oof = source.oof_by_model().get(key)
    if oof is None:
        raise UserError(f"run {run} has no out-of-fold predictions of {key} (oof.csv): finish it with `hiddenemo train`")
    from hiddenemo.models.registry import reads_array, reads_patches
    odd = [n for n in source.model_config(key).encoders.values() if reads_patches(n) or reads_array(n)]
    if odd:     # apply would extract only the modalities' own arrays and feed these encoders zeros
        raise UserError(f"run {run}: exporting a model with {', '.join(odd)} is not supported yet (the recipe "
                        "does not remake pose_patch or frames_xclip on new videos); use `hiddenemo predict` in the workspace")
    training_ids = oof["video_id"].tolist()
    manifest = read_manifest(work).set_index("video_id")
    threshold = source.threshold(key)
    many = len(info.classes) > 2                     # the arg-max of p_<class> instead of a threshold
    figures = evaluate_predictions(oof.rename(columns={"y_true": "label"}).assign(
        subject_id=manifest["subject_id"].reindex(oof["video_id"]).to_numpy()), threshold.get("threshold", 0.5),
        classes=info.classes if many else None)
    selection = source.selection
    description = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "hiddenemo_version": hiddenemo_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {"work": str(work.resolve()), "run": run, "model": key},
        "classes": list(info.classes), "positive": None if many else info.classes[info.positive_index],
        "positive_valence": info.positive_valence,
        "dataset": {"name": info.name, "protocol": info.protocol, "extra": info.extra},
        "modalities": source.modalities(key), "fused": key == "stage2", "dims": source.dims(key),
        "encoders": source.model_config(key).encoders, "transductive": selection.get("transductive", []),
        "members": [f"weights/member-{i}.safetensors" for i in range(len(source.weights(key)))],
        "final_model": config.selection.final_model, "how": selection["final"]["how"],
        "threshold": threshold | {"how": threshold_how(threshold, config)},
        "recipe": make_recipe(work, training_ids, source.modalities(key), config.model.text_encoder),
        "training": {"n_labeled": len(oof), "folds": selection["folds"],
                     **({"per_class": {c: int((oof["y_true"] == k).sum()) for k, c in enumerate(info.classes)}} if many
                        else {"n_positive": int(oof["y_true"].sum())}),
                     "n_pseudo": selection.get("stage2", {}).get("n_pseudo") if key == "stage2" else None,
                     "pseudo_teacher": config.pseudo.teacher if key == "stage2" else None,
                     "n_videos_in_workspace": len(manifest), "epochs": selection[key]["epochs"]},
        "cross_validated": {k: figures["metrics"]["ci"][k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "auroc")}
        | {"n": figures["n_labeled"], "level": 0.95, "grouped_by_subject": bool(figures["per_subject"]),
           "note": "out-of-fold on the labeled training videos; the threshold was chosen on the same predictions"},
    }
    _prepare(out)
    for path, name in zip(source.weights(key), description["members"]):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out / name)
    atomic_write_text(out / "config.yaml", yaml.safe_dump(to_dict(config), sort_keys=False))
    atomic_write_text(out / "README.md", model_card(description))
    atomic_write_text(out / "model.json", json.dumps(description, indent=2, default=plain))   # last: marks it done
    return out


def person_relative(transductive: list[str], modalities: list[str]) -> dict[str, str]:
    """modality -> the run's note on it, for those of `modalities` that the run's transductive notes
    ("<modality>: person-relative statistics ...") say were measured against the person's other
    videos, which a new video does not come with."""
    return {t.split(":")[0]: t for t in transductive if t.split(":")[0] in modalities}


def apply_command(model_dir: Path, description: dict, videos: str = "NEW_VIDEOS") -> str:
    """The `hiddenemo apply` command for plain new video files: with the stand-ins for what such files
    lack (OpenPose JSON: MediaPipe keypoints; a dataset's annotations: no events; a person's other
    videos, which person-relative statistics are measured against: without those modalities)."""
    recipe = description["recipe"]
    flags = ""
    if (recipe["extract"] or {}).get("keypoints") == "openpose-json":
        flags += " --keypoints mediapipe"
    relative = person_relative(description.get("transductive", []), description["modalities"])
    without = [m for m in description["modalities"] if m == "events" or m in relative]
    if without:
        flags += f" --without '[{','.join(without)}]'"
    return f"hiddenemo apply --model {model_dir} --videos {videos} --out predictions.csv{flags}"


def subjects_hint(description: dict) -> str:
    """What `apply_command` leaves out for a single video and `--subjects` keeps; "" when nothing."""
    relative = person_relative(description.get("transductive", []), description["modalities"])
    if not relative:
        return ""
    events = " (events also needs --annotations FILE)" if "events" in relative else ""
    return (f"with several videos of each person, drop {', '.join(relative)} from --without and add --subjects FILE "
            f"(video_id, subject_id){events}: those statistics are measured against the person's own videos")


def threshold_how(threshold: dict, config: TrainConfig) -> str:
    """The threshold's choice in words (selection.threshold of the training config)."""
    method = threshold["method"]
    if method == "argmax":
        return ("the arg-max of the class probabilities" + (
            ", re-weighted to the class prior EM estimates on each batch given to apply (transductive)"
            if threshold.get("class_prior") == "em" else ""))
    if method == "quantile":
        return (f"quantile: the cut that makes {threshold.get('prior')} of the videos predicted together positive "
                "(computed on each batch given to apply, as on the target split in training)")
    if method == "fixed":
        return f"fixed at {threshold['threshold']} by the training config"
    boot = config.selection.threshold_bootstrap
    goal = "balanced accuracy" if method == "balanced" else "accuracy"
    return (f"{method}: the cut maximising the out-of-fold {goal} on the labeled training videos"
            + (f" (median over {boot} bootstrap resamples)" if boot else ""))


def hiddenemo_version() -> str:
    try:
        return metadata.version("hiddenemo")
    except metadata.PackageNotFoundError:
        return "unknown"


def _prepare(out: Path) -> None:
    """An empty or absent directory, or an earlier export (replaced): never someone's other files."""
    if out.exists() and any(out.iterdir()):
        if not (out / "model.json").exists() and not (out / "weights").exists():
            raise UserError(f"{out} exists and is not a model directory; give --out a new or empty directory")
        shutil.rmtree(out / "weights", ignore_errors=True)
        (out / "model.json").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def plain(value):
    """numpy scalars as JSON numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


@dataclass
class ModelDir:
    """A model directory, read and checked: refuses another format version and missing files."""
    path: Path

    def __post_init__(self):
        self.path = Path(self.path)
        file = self.path / "model.json"
        if not file.exists():
            what = "does not exist" if not self.path.exists() else "has no model.json"
            raise UserError(f"{self.path} {what}: give --model a directory written by `hiddenemo export`")
        try:
            self.description = json.loads(file.read_text())
        except json.JSONDecodeError as e:
            raise UserError(f"{file} is unreadable ({e}); export the model again") from e
        found = (self.description.get("format"), self.description.get("format_version"))
        if found != (FORMAT, FORMAT_VERSION):
            raise UserError(f"{self.path} is a model directory of format {found[0]!r} version {found[1]} (written by "
                            f"hiddenemo {self.description.get('hiddenemo_version', '?')}); this hiddenemo "
                            f"({hiddenemo_version()}) reads {FORMAT!r} version {FORMAT_VERSION}: install the "
                            "hiddenemo that wrote it, or export the model again with this one")
        missing = [m for m in self.description["members"] + ["config.yaml"] if not (self.path / m).exists()]
        if missing:
            raise UserError(f"{self.path} is incomplete: {missing[0]} is missing; copy the whole directory again")

    @cached_property
    def config(self) -> TrainConfig:
        return from_dict(TrainConfig, yaml.safe_load((self.path / "config.yaml").read_text()))

    @cached_property
    def model_config(self) -> ModelConfig:
        """The config's model section with the encoders the run chose."""
        return replace(self.config.model, encoders=self.description["encoders"])

    @property
    def weights(self) -> list[Path]:
        return [self.path / m for m in self.description["members"]]

    @property
    def info(self) -> DatasetInfo:
        """The classes as the workspace had them (apply's workspace gets the same)."""
        d = self.description
        return DatasetInfo(name=f"apply:{d['dataset']['name']}", classes=d["classes"], positive=d["positive"],
                           positive_valence=d["positive_valence"], extra=d["dataset"]["extra"])

    def __getitem__(self, key: str):
        return self.description[key]

    def table_columns(self) -> list[str]:
        return ["video_id", "predicted_class", *(f"p_{c}" for c in self.description["classes"]), "n_votes", "vote_std"]
