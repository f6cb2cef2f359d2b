"""`Run`: the one reader and writer of a run directory, `WORK/runs/<run>/` (docs/contracts.md).

Training writes a run's files through it, and everything that reads a run (predict, ensemble,
export) asks it rather than parsing files itself: the resolved config, the selection (chosen epochs,
thresholds, the final model), out-of-fold predictions, metrics, the weights that predict, and
whether the run is finished.
"""
from __future__ import annotations

import json
from dataclasses import replace
from functools import cached_property
from pathlib import Path

import pandas as pd
import yaml

from hiddenemo.data.store import atomic_write_text
from hiddenemo.data.store import run_dir as store_run_dir
from hiddenemo.errors import UserError
from hiddenemo.eval.oof import by_model, key_parts
from hiddenemo.train.config import ModelConfig, TrainConfig, from_dict, to_dict


class Run:
    """The run `name` of the workspace `work`; nothing is read until asked for."""

    def __init__(self, work: str | Path, name: str):
        self.work, self.name = Path(work), name
        self.dir = store_run_dir(work, name)

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
        """oof.csv: video_id, stage, modality, fold, p_positive, label (None before training ends)."""
        path = self.dir / "oof.csv"
        return pd.read_csv(path, dtype={"video_id": str}) if path.exists() else None

    def oof_by_model(self) -> dict[str, pd.DataFrame]:
        oof = self.oof()
        return {} if oof is None or oof.empty else by_model(oof)

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
        """True when the run has no config yet or the same one (a run never mixes two configs)."""
        path = self.dir / "config.yaml"
        return not path.exists() or yaml.safe_load(path.read_text()) == yaml.safe_load(yaml.safe_dump(to_dict(config)))

    def write_json(self, name: str, data: dict) -> None:
        """selection.json, metrics.json, predictions*.json."""
        atomic_write_text(self.dir / name, json.dumps(data, indent=2))
        self.__dict__.pop(name.removesuffix(".json"), None)

    def write_table(self, name: str, table: pd.DataFrame) -> Path:
        """oof.csv, predictions*.csv."""
        atomic_write_text(self.dir / name, table.to_csv(index=False))
        return self.dir / name

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

    def _read(self, name: str) -> str:
        try:
            return (self.dir / name).read_text()
        except FileNotFoundError as e:
            raise UserError(f"{self.dir} is not a finished run ({name} missing); "
                            f"run `hiddenemo train --run {self.name}` first") from e
