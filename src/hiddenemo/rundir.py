"""`Run`: the one reader and writer of a run directory, `WORK/runs/<run>/` (docs/contracts.md).

Training and the ensemble write a run's files through it, and everything that reads a run (predict,
ensemble, evaluate, report, ablate, demo, export) asks it rather than parsing files itself: the
resolved config, the selection (chosen epochs, thresholds, the final model), out-of-fold and target
predictions, metrics, the evaluation, training curves, the weights that predict, and whether the run
is finished.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from hiddenemo.data.store import atomic_write_text
from hiddenemo.data.store import run_dir as store_run_dir
from hiddenemo.errors import UserError
from hiddenemo.eval.oof import by_model, key_parts
from hiddenemo.train.config import PLACEMENT, ModelConfig, TrainConfig, from_dict, to_dict


OOF_COLUMNS = ["video_id", "stage", "modality", "fold"]
PREDICTION_COLUMNS = ["video_id"]


def class_probs(table: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """(n, C) class probabilities of an oof or predictions table, in `classes` order: its `p_<class>`
    columns (more than two classes), or for two classes [1 - p_positive, p_positive] with `classes` =
    [negative, positive]."""
    columns = [f"p_{c}" for c in classes]
    if all(c in table for c in columns):
        return table[columns].to_numpy(np.float64)
    p = table["p_positive"].to_numpy(np.float64)
    return np.stack([1 - p, p], axis=1)


@dataclass(frozen=True)
class Predictions:
    """One predictions*.csv (video_id, p_positive or p_<class>... for more than two classes,
    predicted_class, n_votes, vote_std) and its .json sidecar (split, model, threshold or, for more
    classes, decision; threshold_method, without_input)."""
    table: pd.DataFrame
    meta: dict

    @property
    def threshold(self) -> float | None:
        return float(self.meta["threshold"]) if "threshold" in self.meta else None

    def probs(self, classes: list[str]) -> np.ndarray:
        """(n, C) class probabilities (`class_probs`)."""
        return class_probs(self.table, classes)


def predictions_name(model: str | None = None, split: str = "test") -> str:
    """`predictions`, `predictions_stage1-pose` (another model than the final one), `predictions_val`
    (another split), or both."""
    return "predictions" + (f"_{model.replace('/', '-')}" if model else "") + ("" if split == "test" else f"_{split}")


class Run:
    """The run `name` of the workspace `work`; nothing is read until asked for."""

    def __init__(self, work: str | Path, name: str):
        self.work, self.name = Path(work), name
        self.dir = store_run_dir(work, name)
        self._read_files: dict[str, object] = {}       # file name -> parsed content, until written again

    # ---- reading ---------------------------------------------------------------------------------
    @property
    def is_ensemble(self) -> bool:
        return (self.dir / "ensemble.json").exists()

    @cached_property
    def config(self) -> TrainConfig:
        self._refuse_ensemble()
        return from_dict(TrainConfig, yaml.safe_load(self._read("config.yaml")))

    @cached_property
    def selection(self) -> dict:
        return json.loads(self._read("selection.json"))

    @cached_property
    def metrics(self) -> dict:
        return json.loads(self._read("metrics.json"))

    @property
    def final_key(self) -> str:
        """The model that predicts: `stage2` or `stage1/<modality>`."""
        return self.selection["final"]["model"]

    @property
    def model_keys(self) -> list[str]:
        return [k for k in self.selection if k.startswith("stage")]

    def modalities(self, key: str) -> list[str]:
        """The modalities a model reads: its own for `stage1/<m>`, all of the config's for `stage2`."""
        stage, modality = key_parts(key)
        return self.config.model.modalities if stage == "stage2" else [modality]

    def threshold(self, key: str) -> dict:
        """How the threshold of `key` was chosen: {method, threshold, ...} (selection.json)."""
        return self._entry(key)["threshold"]

    def weights(self, key: str) -> list[Path]:
        """The checkpoint(s) that predict for `key`: the k fold models at the chosen epoch, or the
        retrained one (`selection.final_model: retrain`), in the model's directory (its `dir` when
        stage 1 chose among candidate encoders)."""
        entry = self._entry(key)
        base = self.dir / entry.get("dir", key)
        fits = (["final"] if self.config.selection.final_model == "retrain"
                else [f"fold{k}" for k in range(self.selection["folds"]["k"])])
        return [base / fit / f"epoch-{entry['epochs']}.safetensors" for fit in fits]

    def model_config(self, key: str) -> ModelConfig:
        """The config's model section with the encoders the run chose (stage 1 may pick among candidates)."""
        chosen = dict(self.selection.get("encoders", {}))
        if "encoder" in self._entry(key):
            chosen[key_parts(key)[1]] = self._entry(key)["encoder"]
        return replace(self.config.model, encoders={**self.config.model.encoders, **chosen})

    def dims(self, key: str) -> dict[str, int]:
        """Input width of each modality, as the models of `key` were built."""
        dims = {m: int(d) for m, d in self.selection["dims"].items()}
        if "dims" in self._entry(key):
            dims[key_parts(key)[1]] = int(self._entry(key)["dims"])
        return dims

    def oof(self) -> pd.DataFrame | None:
        """oof.csv: video_id, stage, modality, fold, p_positive (more than two classes: p_<class>...),
        y_true (None before training ends)."""
        return self._table("oof.csv", OOF_COLUMNS)

    @property
    def classes(self) -> list[str] | None:
        """The classes of a run of more than two classes (selection.json), else None (two classes)."""
        return self.selection_or_empty.get("classes")

    def oof_by_model(self) -> dict[str, pd.DataFrame]:
        oof = self.oof()
        return {} if oof is None or oof.empty else by_model(oof)

    def predictions(self, model: str | None = None, split: str = "test") -> Predictions | None:
        """The predictions of the final model (`model` None) or of another one on `split`, or None."""
        name = predictions_name(model, split)
        table = self._table(f"{name}.csv", PREDICTION_COLUMNS)
        if table is None:
            return None
        return Predictions(table, self._json(f"{name}.json") or {})

    def modality_predictions(self) -> dict[str, Predictions]:
        """Each stage-1 modality's own predictions on the test split (`predict --model stage1/<m>`)."""
        found = sorted(p.stem.removeprefix("predictions_stage1-") for p in self.dir.glob("predictions_stage1-*.csv"))
        return {m: self.predictions(f"stage1/{m}") for m in found}

    @property
    def selection_or_empty(self) -> dict:
        """selection.json, or {} for a run that has not finished selecting (the report shows what exists)."""
        return self._json("selection.json") or {}

    @property
    def metrics_or_empty(self) -> dict:
        """metrics.json, or {} for a run still training."""
        return self._json("metrics.json") or {}

    @property
    def training_finished(self) -> bool:
        """True once `train` ran to its end: metrics.json gets its `test` entry after the last step (prediction)."""
        return "test" in self.metrics_or_empty

    @property
    def evaluation(self) -> dict | None:
        """evaluation.json (`hiddenemo evaluate`), or None."""
        return self._json("evaluation.json")

    @property
    def current_evaluation(self) -> dict | None:
        """evaluation.json when it is newer than the predictions it scored (oof.csv, predictions.csv), else None."""
        saved, path = self.evaluation, self.dir / "evaluation.json"
        scored = [self.dir / name for name in ("oof.csv", "predictions.csv") if (self.dir / name).exists()]
        if saved is None or any(p.stat().st_mtime > path.stat().st_mtime for p in scored):
            return None
        return saved

    def has_predictions(self) -> bool:
        """Out-of-fold or target predictions exist (something to evaluate)."""
        return (self.dir / "oof.csv").exists() or (self.dir / "predictions.csv").exists()

    @property
    def ensemble(self) -> dict | None:
        """ensemble.json of an ensemble run (members, final model, how), or None."""
        return self._json("ensemble.json")

    @property
    def transductive(self) -> list[str]:
        """What the run learnt from unlabeled target videos (selection.json), [] before selection."""
        return self.selection_or_empty.get("transductive", [])

    def final_or_last(self) -> str | None:
        """The final model, or (a run still training) the last model with out-of-fold predictions."""
        final = self.selection_or_empty.get("final", {}).get("model")
        keys = list(self.oof_by_model())
        return final or (keys[-1] if keys else None)

    def threshold_value(self, key: str | None, override: float | None = None) -> float:
        """The threshold `key` predicts with: `override` when given; for the final model the one applied
        to its predictions (a quantile threshold is computed on the target videos); else the chosen one
        (selection.json); else 0.5."""
        if override is not None:
            return float(override)
        predicted = self.predictions()
        if key is not None and key == self.final_or_last() and predicted is not None and predicted.threshold is not None:
            return predicted.threshold
        return self.chosen_threshold(key)

    def chosen_threshold(self, key: str | None) -> float:
        """The threshold chosen for `key` on out-of-fold predictions (selection.json), else 0.5."""
        chosen = self.selection_or_empty.get(key, {}).get("threshold") if key else None
        if isinstance(chosen, dict):
            chosen = chosen.get("threshold")
        return float(chosen) if chosen is not None else 0.5

    def threshold_method(self, key: str) -> str:
        chosen = self.selection_or_empty.get(key, {}).get("threshold")
        if isinstance(chosen, dict) and chosen.get("method"):
            return f"method: {chosen['method']}" + (f", on {chosen['metric']}" if chosen.get("metric") else "")
        return "default 0.5: no selection.json entry"

    def histories(self) -> dict[str, pd.DataFrame]:
        """Training curves per model key (stage*/metrics.csv: one row per epoch and fold); stage 2's from
        the cross-validation it kept (stage2/without-pseudo when the pseudo-labels were left out)."""
        curves = {f"stage1/{p.parent.name}": p for p in sorted((self.dir / "stage1").glob("*/metrics.csv"))}
        stage2 = self.dir / self.selection_or_empty.get("stage2", {}).get("dir", "stage2") / "metrics.csv"
        if stage2.exists():
            curves["stage2"] = stage2
        return {k: self._table(str(p.relative_to(self.dir)), []) for k, p in curves.items()}

    def config_text(self) -> str | None:
        path = self.dir / "config.yaml"
        return path.read_text() if path.exists() else None

    def unfinished(self, key: str | None = None) -> str | None:
        """Why the run (or its model `key`) cannot predict yet, or None when it can."""
        if self.is_ensemble:
            return (f"{self.dir} is an ensemble of runs (`hiddenemo ensemble`): it has no weights of its own; "
                    "use one of its members")
        for name in ("config.yaml", "selection.json", "metrics.json"):
            if not (self.dir / name).exists():
                return f"{self.dir} is not a finished run ({name} missing): finish it with `hiddenemo train`"
        key = key or self.final_key
        if key not in self.selection:
            return f"run {self.name} has no model {key!r}; it has {self.model_keys}"
        missing = [p for p in self.weights(key) if not p.exists()]
        if missing:
            return f"run {self.name}: the weights of {key} are missing ({missing[0]}); train the run again"
        return None

    def require_finished(self, key: str | None = None) -> str:
        """The model key (default: the final one) of a finished run; else a UserError saying why not."""
        reason = self.unfinished(key)
        if reason:
            raise UserError(reason)
        return key or self.final_key

    # ---- writing (training and predict) ------------------------------------------------------------
    def save_config(self, config: TrainConfig) -> None:
        atomic_write_text(self.dir / "config.yaml", yaml.safe_dump(to_dict(config), sort_keys=False))
        self.__dict__.pop("config", None)

    def same_config(self, config: TrainConfig) -> bool:
        """True when the run has no config yet or the same one (a run never mixes two configs). Both are
        read as a TrainConfig, so a config saved before a section gained fields (pseudo.policy was a
        plain dict) equals the same settings written out in full. Where the fits run (`PLACEMENT`) may differ."""
        path = self.dir / "config.yaml"
        if not path.exists():
            return True
        as_saved = lambda c: {k: v for k, v in yaml.safe_load(yaml.safe_dump(to_dict(c))).items()
                              if k not in PLACEMENT}
        try:
            return as_saved(from_dict(TrainConfig, yaml.safe_load(path.read_text()))) == as_saved(config)
        except (TypeError, ValueError):                    # fields this version does not know: not the same
            return False

    def write_json(self, name: str, data: dict, default=None) -> None:
        """selection.json, metrics.json, predictions*.json, ensemble.json, demo.json."""
        atomic_write_text(self.dir / name, json.dumps(data, indent=2, default=default))
        self.__dict__.pop(name.removesuffix(".json"), None)
        self._read_files.pop(name, None)

    def write_table(self, name: str, table: pd.DataFrame) -> Path:
        """oof.csv, predictions*.csv, submission.csv."""
        atomic_write_text(self.dir / name, table.to_csv(index=False))
        self._read_files.pop(name, None)
        return self.dir / name

    def write_predictions(self, table: pd.DataFrame, meta: dict, model: str | None = None,
                          split: str = "test") -> Path:
        """predictions*.csv and its .json sidecar (see `predictions_name`)."""
        name = predictions_name(model, split)
        out = self.write_table(f"{name}.csv", table)
        self.write_json(f"{name}.json", meta)
        return out

    def write_evaluation(self, result: dict, markdown: str, default=None) -> tuple[Path, Path]:
        """evaluation.json and evaluation.md (`hiddenemo evaluate`)."""
        atomic_write_text(self.dir / "evaluation.json", json.dumps(result, indent=2, default=default))
        atomic_write_text(self.dir / "evaluation.md", markdown)
        return self.dir / "evaluation.json", self.dir / "evaluation.md"

    # ---- helpers -----------------------------------------------------------------------------------
    def _entry(self, key: str) -> dict:
        if key not in self.selection:
            raise UserError(f"run {self.name} has no model {key!r}; it has {self.model_keys}")
        return self.selection[key]

    def _refuse_ensemble(self) -> None:
        if self.is_ensemble:
            members = json.loads((self.dir / "ensemble.json").read_text())["members"]
            raise UserError(f"{self.dir} is an ensemble of the runs {members} (`hiddenemo ensemble`): it has no "
                            "models of its own; use its members, then ensemble them again")

    def _json(self, name: str) -> dict | None:
        """A JSON file of the run (read once), or None when absent; unreadable is a UserError naming it."""
        if name not in self._read_files:
            path = self.dir / name
            try:
                self._read_files[name] = json.loads(path.read_text()) if path.exists() else None
            except (OSError, json.JSONDecodeError) as e:
                raise UserError(f"{path} is unreadable ({e}); re-run the stage that writes it") from e
        return self._read_files[name]

    def _table(self, name: str, columns: list[str]) -> pd.DataFrame | None:
        """A CSV file of the run (read once; each caller gets its own copy) with at least `columns`, or
        None when absent."""
        if name not in self._read_files:
            self._read_files[name] = self._read_table(name, columns)
        table = self._read_files[name]
        return None if table is None else table.copy()

    def _read_table(self, name: str, columns: list[str]) -> pd.DataFrame | None:
        path = self.dir / name
        if not path.exists():
            return None
        try:
            df = pd.read_csv(path, dtype={"video_id": str})
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            raise UserError(f"{path} is unreadable ({e}); re-run the stage that writes it") from e
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise UserError(f"{path} lacks column(s) {missing} (see docs/contracts.md); re-run the stage that writes it")
        return df

    def _read(self, name: str) -> str:
        try:
            return (self.dir / name).read_text()
        except FileNotFoundError as e:
            raise UserError(f"{self.dir} is not a finished run ({name} missing); "
                            f"run `hiddenemo train --run {self.name}` first") from e
