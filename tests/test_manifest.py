"""The manifest and dataset.json: schema, round trip, refusals, updates."""
from __future__ import annotations

import pandas as pd
import pytest

from hiddenemo.data.manifest import (COLUMNS, DatasetInfo, ManifestError, read_manifest, update_manifest,
                                     write_manifest)


def _rows() -> pd.DataFrame:
    return pd.DataFrame({"video_id": ["a", "b", "c"], "label": [1, None, 0],
                         "split": ["train", "test", "train"], "n_frames": [10, None, 30]})


def test_roundtrip_keeps_schema_and_unlabeled_as_na(work):
    write_manifest(work, _rows())
    df = read_manifest(work)
    assert list(df.columns) == list(COLUMNS)
    assert {c: str(t) for c, t in df.dtypes.items()} == {
        "video_id": "string", "path": "string", "label": "Int64", "split": "string",
        "subject_id": "string", "fps": "float64", "n_frames": "Int64", "source": "string"}
    assert df["label"].isna().tolist() == [False, True, False]
    assert df["label"].dropna().tolist() == [1, 0]


def test_duplicates_and_missing_columns_are_refused(work):
    with pytest.raises(ManifestError, match="duplicate video ids.*'a'"):
        write_manifest(work, pd.DataFrame({"video_id": ["a", "a"], "split": ["train", "test"]}))
    with pytest.raises(ManifestError, match="split"):
        write_manifest(work, pd.DataFrame({"video_id": ["a"]}))
    with pytest.raises(ManifestError, match="hiddenemo dataset"):
        read_manifest(work)


def test_update_overwrites_only_given_rows_and_columns(work):
    write_manifest(work, _rows())
    df = update_manifest(work, pd.DataFrame({"video_id": ["b"], "fps": [25.0], "n_frames": [99]}))
    assert df.set_index("video_id").loc["b", "n_frames"] == 99
    assert df.set_index("video_id").loc["a", "n_frames"] == 10
    assert read_manifest(work).set_index("video_id").loc["b", "fps"] == 25.0
    with pytest.raises(ManifestError, match="unknown video ids"):
        update_manifest(work, pd.DataFrame({"video_id": ["zz"], "fps": [1.0]}))


def test_dataset_info_roundtrip_and_positive_index(work):
    DatasetInfo("imigue", ["lose", "win"], "win", "miga").save(work)
    info = DatasetInfo.load(work)
    assert (info.classes, info.positive, info.positive_index) == (["lose", "win"], "win", 1)
    assert DatasetInfo("x", ["a", "b", "c"]).positive_index == 2
