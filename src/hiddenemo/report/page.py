"""`WORK/runs/RUN/report.html`: one self-contained page (images inline as base64 PNG) about a run.

It reads the run through `Run` (metrics, selection, out-of-fold and test predictions, training
curves, `evaluation.json`) and the workspace through `Workspace`, store and teacher verdicts. Its
figures with intervals are `hiddenemo evaluate`'s: the saved evaluation when it is current, else the
same computation for the model alone. A piece
that is missing (a stage not run, no teacher, no videos) becomes a note saying what would fill it;
everything read from files (ids, teacher texts, config) is HTML-escaped.
"""
from __future__ import annotations

import base64
import html
import json
import logging
import time
from pathlib import Path
from string import Template

import numpy as np
import pandas as pd

from hiddenemo.data.keypoints import LOW_COVERAGE, MIN_CONFIDENCE, coverage, low_coverage, video_coverage
from hiddenemo.data.manifest import DatasetInfo
from hiddenemo.data.layout import POSE_GROUPS
from hiddenemo.data.store import Store, atomic_write_text
from hiddenemo.data.workspace import Workspace
from hiddenemo.errors import UserError
from hiddenemo.eval.metrics import METRICS, binary_metrics, multiclass_metrics
from hiddenemo.report import plots
from hiddenemo.rundir import Run, class_probs

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).with_name("template.html")
MAX_TEACHER_ROWS = 25
MAX_TEXT_CHARS = 400
METRIC_NAMES = {"accuracy": "accuracy", "balanced_accuracy": "balanced acc.", "macro_f1": "macro-F1", "auroc": "AUROC"}


def build_report(work: Path | Workspace, run: str) -> Path:
    """Write and return WORK/runs/RUN/report.html."""
    ws = Workspace.of(work)
    work = ws.work
    r = Run(work, run)
    if not r.dir.is_dir():
        raise UserError(f"{r.dir} does not exist: train it first (`hiddenemo train --work {work} --run {run}`)")
    info, truth = ws.info, ws.truth()
    evaluation = _evaluation(ws, r)
    many = not ws.is_binary
    sections = [
        ("Summary", _summary(r, evaluation, truth)),
        ("One-vs-rest ROC and precision-recall" if many else "ROC and precision-recall", _curves(r, truth, ws)),
        ("Confusion matrix at the arg-max" if many else "Confusion matrix at the chosen threshold",
         _confusion(r, truth, ws)),
        ("Per-video probabilities and vote spread", _votes(r, truth, ws)),
        ("Training curves", _training(r)),
        ("Teacher vs student", _note("The teacher-versus-student comparison is built for two classes.") if many
         else _teachers(work, r, truth, info)),
        ("Data: video lengths", _frame_counts(truth, info)),
        ("Data: coverage per video and keypoint group", _coverage(work, truth)),
        ("Data: a frame with its skeleton", _skeleton(work, truth)),
        ("Data: keypoints on the DINOv2 patch grid", _patch_grid(work, truth)),
        ("Run configuration", _config(r)),
    ]
    nav = "".join(f'<li><a href="#s{i}">{html.escape(title)}</a></li>' for i, (title, _) in enumerate(sections))
    body = "".join(f'<section id="s{i}"><h2>{html.escape(title)}</h2>{content}</section>'
                   for i, (title, content) in enumerate(sections))
    page = Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        title=html.escape(f"hiddenemo report: {run}"), run=html.escape(run), work=html.escape(str(work.resolve())),
        dataset=html.escape(f"{info.name} ({' / '.join(info.classes)}"
                            + (")" if many else f", positive: {ws.positive})")),
        created=html.escape(time.strftime("%Y-%m-%d %H:%M")), nav=nav, body=body)
    out = r.dir / "report.html"
    atomic_write_text(out, page)
    return out


def _evaluation(ws: Workspace, r: Run) -> dict | None:
    """The run's figures with intervals as `hiddenemo evaluate` computes them: its evaluation.json when it
    is newer than the predictions it scores, else the same computation for the model alone (no
    baselines; not saved). None when the run has nothing to evaluate yet."""
    if not r.has_predictions():
        return None
    if r.current_evaluation is not None:
        return r.current_evaluation
    from hiddenemo.eval.evaluate import evaluate_run
    try:
        return evaluate_run(ws, r.name, baselines=[])
    except UserError as e:                 # e.g. no labeled training videos: the summary says so
        log.warning("report: no evaluation of %s: %s", r.name, e)
        return None


# ------------------------------------------------------------------------------------ reading

def _with_truth(df: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Join predictions with the manifest's truth: `y` (1 positive, 0, <NA>), split, subject."""
    drop = [c for c in ("y", "split", "subject_id") if c in df]
    return df.drop(columns=drop).merge(truth[["video_id", "y", "split", "subject_id"]], on="video_id", how="left")


def _test_predictions(r: Run, truth: pd.DataFrame) -> pd.DataFrame | None:
    predicted = r.predictions()
    return None if predicted is None else _with_truth(predicted.table, truth)


# ----------------------------------------------------------------------------------- sections

def _summary(r: Run, evaluation: dict | None, truth: pd.DataFrame) -> str:
    final = r.final_or_last()
    n_labeled = int((truth["split"].eq("train") & truth["y"].notna()).sum())
    intro = (f"<p>{len(truth)} videos: {n_labeled} labeled for training, "
             f"{int(truth['split'].eq('test').sum())} in the test (target) split "
             f"({_labels_state(truth[truth['split'] == 'test'])}). ")
    if final is None:
        return intro + "</p>" + _note("No trained models in this run yet (no oof.csv or selection.json): "
                                      "run `hiddenemo train` with this --run.")
    intro += f"Final model: <b>{html.escape(final)}</b>, " + (
        f"the arg-max of the class probabilities ({_decision_text(r, final)}).</p>" if r.classes else
        f"threshold {r.threshold_value(final):.3f} ({html.escape(r.threshold_method(final))}).</p>")
    model = (evaluation or {}).get("model") or {"cross_validated": {}, "target": {}}
    rows = [_metric_row(key + (" (final)" if key == final else ""), "cross-validated (out-of-fold)", ev)
            for key, ev in model["cross_validated"].items()]
    target = model.get("target") or {}
    if target.get("metrics"):
        rows.append(_metric_row(f"{final} (final)", f"{evaluation['split']} ({target['metrics']['n']} videos)", target))
    table = _html_table(pd.DataFrame(rows)) if rows else _note("oof.csv has no rows.")
    notes = []
    metrics = r.metrics_or_empty
    if metrics.get("note"):
        notes.append(metrics["note"])
    gain = metrics.get("stage2_gain_auroc")
    if gain:
        notes.append(f"Stage 2 vs the best stage-1 modality ({gain['best_stage1']}): cross-validated AUROC "
                     f"{gain['stage2']:.3f} vs {gain['best_stage1_value']:.3f} ({gain['gain']:+.3f}).")
    if "stage2" not in r.oof_by_model():
        notes.append("Stage 2 (fusion with pseudo-labels) was not run in this run.")
    if evaluation:
        notes.append(f"Intervals: {round(100 * evaluation['level'])} % bootstrap ({evaluation['n_boot']} resamples of "
                     "subjects where known, else videos), as `hiddenemo evaluate` computes them.")
    return intro + table + "".join(_note(n) for n in notes) + _baselines(evaluation)


def _decision_text(r: Run, final: str) -> str:
    decision = r.selection_or_empty.get(final, {}).get("threshold", {})
    return ("class prior estimated by EM on the target videos: transductive" if decision.get("class_prior") == "em"
            else "at the training class prior")


def _metric_row(what: str, on: str, ev: dict) -> dict:
    """One row of figures from an evaluation entry (`evaluate_predictions` output)."""
    m = ev["metrics"]
    cut = ev["threshold"]
    row = {"model": what, "on": on, "n": m["n"], "threshold": cut if isinstance(cut, str) else f"{cut:.3f}"}
    for k in METRICS:
        ci = m["ci"][k]
        row[METRIC_NAMES[k]] = (f"{ci['estimate']:.3f} [{ci['low']:.2f}, {ci['high']:.2f}]"
                                if ci["estimate"] is not None and np.isfinite(ci["estimate"]) else "n/a")
    return row


def _baselines(ev: dict | None) -> str:
    notes = "".join(_note(n) for n in (ev or {}).get("notes", []))
    if not ev or not ev.get("baselines"):
        return notes + _note("Baselines (majority, logistic regression per modality) appear here after "
                             "`hiddenemo evaluate --work WORK --run RUN`.")
    rows = [_metric_row(f"{name} ({modality})", f"cross-validated, {tag}", e)
            for modality, bl in ev["baselines"].items() for name in ("majority", "logistic")
            for tag, e in bl.get(name, {}).get("cross_validated", {}).items() if e.get("metrics")]
    return "<h3>Baselines (from evaluation.json)</h3>" + (_html_table(pd.DataFrame(rows)) if rows else _note("none")) + notes


def _curves(r: Run, truth: pd.DataFrame, ws: Workspace) -> str:
    if not ws.is_binary:
        return _class_curves(r, truth, ws.classes)
    curves = {}
    for key, group in r.oof_by_model().items():
        g = _with_truth(group, truth)
        g = g[g["y"].notna()]
        curves[f"{key}, cross-val."] = (g["y"].astype(int).to_numpy(), g["p_positive"].to_numpy(float))
    pred = _test_predictions(r, truth)
    if pred is not None:
        known = pred[pred["y"].notna() & pred["split"].eq("test")]
        if known["y"].nunique() == 2:
            curves[f"{r.final_or_last()}, test"] = (known["y"].astype(int).to_numpy(), known["p_positive"].to_numpy(float))
    curves = {k: v for k, v in curves.items() if len(np.unique(v[0])) == 2}
    if not curves:
        return _note("No predictions with both classes among known labels yet (oof.csv missing or one-class).")
    return _img(plots.roc_pr(curves), "ROC and PR curves") + _note(
        "Cross-validated curves are out-of-fold predictions on the labeled training videos; a test curve appears "
        "only when the test labels are in the manifest.")


def _class_curves(r: Run, truth: pd.DataFrame, classes: list[str]) -> str:
    """More than two classes: one-vs-rest curves of the final model, cross-validated (and on the test
    split when its labels are known)."""
    final = r.final_or_last()
    tables = {"cross-val.": r.oof_by_model().get(final)}
    pred = _test_predictions(r, truth)
    if pred is not None:
        tables["test"] = pred[pred["split"].eq("test")]
    curves = {}
    for on, table in tables.items():
        if table is None:
            continue
        g = _with_truth(table, truth)
        g = g[g["y"].notna()]
        y, P = g["y"].astype(int).to_numpy(), class_probs(g, classes)
        for k, c in enumerate(classes):
            if len(np.unique(y == k)) == 2:
                curves[f"{c} vs rest, {on}"] = ((y == k).astype(int), P[:, k])
    if not curves:
        return _note("No predictions with known labels of several classes yet (oof.csv missing?).")
    return _img(plots.roc_pr(curves), "one-vs-rest ROC and PR curves") + _note(
        f"Model {final}: each class against the others. Cross-validated curves are out-of-fold predictions on the "
        "labeled training videos; test curves appear only when the test labels are in the manifest.")


def _confusion(r: Run, truth: pd.DataFrame, ws: Workspace) -> str:
    final = r.final_or_last()
    if final is None:
        return _note("No trained model yet.")
    if not ws.is_binary:
        return _class_confusion(r, truth, ws.classes, final)
    threshold = r.threshold_value(final)
    matrices = {}
    group = r.oof_by_model().get(final)
    if group is not None:
        g = _with_truth(group, truth)
        g = g[g["y"].notna()]
        matrices[f"{final}, cross-validated (n={len(g)})"] = binary_metrics(
            g["y"].astype(int), g["p_positive"], threshold)["confusion"]
    pred = _test_predictions(r, truth)
    if pred is not None:
        known = pred[pred["y"].notna() & pred["split"].eq("test")]
        if len(known):
            matrices[f"{final}, test (n={len(known)})"] = binary_metrics(
                known["y"].astype(int), known["p_positive"], threshold)["confusion"]
    if not matrices:
        return _note("No out-of-fold predictions of the final model and no labeled test predictions.")
    return _img(plots.confusion(matrices, _short_classes(ws.info)), "confusion matrices") + _note(
        f"Threshold {threshold:.3f} ({r.threshold_method(final)}); rows are the truth, columns the prediction.")


def _class_confusion(r: Run, truth: pd.DataFrame, classes: list[str], final: str) -> str:
    matrices = {}
    tables = {"cross-validated": r.oof_by_model().get(final)}
    pred = _test_predictions(r, truth)
    if pred is not None:
        tables["test"] = pred[pred["split"].eq("test")]
    for on, table in tables.items():
        if table is None:
            continue
        g = _with_truth(table, truth)
        g = g[g["y"].notna()]
        if len(g):
            matrices[f"{final}, {on} (n={len(g)})"] = multiclass_metrics(g["y"].astype(int), class_probs(g, classes))["confusion"]
    if not matrices:
        return _note("No out-of-fold predictions of the final model and no labeled test predictions.")
    return _img(plots.confusion(matrices, classes), "confusion matrices") + _note(
        f"The arg-max of the class probabilities ({_decision_text(r, final)}); rows are the truth, columns the prediction.")


def _votes(r: Run, truth: pd.DataFrame, ws: Workspace) -> str:
    pred = _test_predictions(r, truth)
    if pred is None or pred.empty:
        return _note("No predictions.csv: run `hiddenemo predict` (train runs it for the test split).")
    final = r.final_or_last()
    n_votes = int(pred["n_votes"].max()) if "n_votes" in pred else 1
    text = (f"{len(pred)} videos of the test split, model {final}; each point is the mean of {n_votes} samplings "
            f"of frames, the bar ± their standard deviation (median {pred['vote_std'].median():.3f}).")
    if pred["y"].isna().all():
        text += " Test labels are withheld in this workspace, so points are grey."
    if not ws.is_binary:
        pred = pred.assign(p_predicted=class_probs(pred, ws.classes).max(1))
        return _img(plots.votes(pred, None, ws.classes, "p_predicted"), "votes") + _note(
            text + " The probability shown is the predicted class's.")
    return _img(plots.votes(pred, r.threshold_value(final), _short_classes(ws.info)), "votes") + _note(text)


def _training(r: Run) -> str:
    histories = {k: h for k, h in r.histories().items() if not h.empty}
    if not histories and r.ensemble is not None:
        return _note(f"An ensemble of the runs {', '.join(r.ensemble['members'])}: each member's "
                     "report has its training curves.")
    if not histories:
        return _note("No stage*/metrics.csv in this run: the stages have not been trained yet.")
    notes = [] if "stage2" in histories else [_note("Stage 2 has no metrics.csv (not run).")]
    chosen = "; ".join(f"{k}: epoch {v['epochs']}" + (" (the starting weights: no epoch of training beat them out "
                                                      "of fold)" if v["epochs"] == 0 else "")
                       for k, v in r.selection_or_empty.items() if isinstance(v, dict) and "epochs" in v)
    if chosen:
        notes.append(_note("Chosen epochs: " + chosen + "."))
    choice = r.selection_or_empty.get("stage2", {}).get("pseudo_labels")
    if choice:
        notes.append(_note(f"Stage 2 cross-validated with the teacher's pseudo-labels (each fold's own held-out "
                           f"videos labelled by the teacher too) and without them: out-of-fold AUROC "
                           f"{choice['auroc_with']:.3f} with, {choice['auroc_without']:.3f} without; kept "
                           f"{'with' if choice['kept'] else 'without'} (curves shown: the kept one)."))
    return _img(plots.training_curves(histories), "training curves") + "".join(notes)


def _teachers(work: Path, r: Run, truth: pd.DataFrame, info: DatasetInfo) -> str:
    from hiddenemo.teacher.store import read_verdicts

    teacher_ids = sorted(p.stem for p in (work / "teacher").glob("*.jsonl"))
    if not teacher_ids:
        return _note("No teacher verdicts in WORK/teacher/: run `hiddenemo teach` to compare a teacher with the student.")
    final = r.final_or_last()
    student = pd.DataFrame(columns=["video_id", "p_student"])
    parts = []
    if final in r.oof_by_model():
        parts.append(r.oof_by_model()[final][["video_id", "p_positive"]])
    predicted = r.predictions()
    if predicted is not None:
        parts.append(predicted.table[["video_id", "p_positive"]])
    if parts:
        student = pd.concat(parts).drop_duplicates("video_id").rename(columns={"p_positive": "p_student"})
    out, listing = [], []
    for tid in teacher_ids:
        verdicts = read_verdicts(work, tid)
        if not verdicts:
            out.append(_note(f"Teacher {tid}: no successful verdicts."))
            continue
        v = pd.DataFrame([{"video_id": k, "p_teacher": x.p_positive, "teacher_label": x.label, "text": x.text}
                          for k, x in verdicts.items()])
        v = _with_truth(v.merge(student, on="video_id", how="left"), truth)
        out += [_teacher_rows(tid, v, r, final, split) for split in ("train", "test")]
        listing.append(_verdict_listing(tid, v, info))
    rows = [r for r in out if isinstance(r, dict)]
    html_rows = _html_table(pd.DataFrame(rows)) if rows else _note(
        "No videos with both a known label and a teacher verdict to score.")
    return (html_rows + "".join(r for r in out if isinstance(r, str))
            + _note("Both scored on the same videos. Train = cross-validated student (out-of-fold); "
                    "test only when its labels are in the manifest. The student's threshold is its chosen one, "
                    "the teacher's 0.5.") + "".join(listing))


def _teacher_rows(tid: str, v: pd.DataFrame, r: Run, final: str | None, split: str) -> dict | str:
    on = v[v["split"].eq(split) & v["y"].notna() & v["p_teacher"].notna()]
    if on.empty:
        return ""
    y = on["y"].astype(int).to_numpy()
    teacher = binary_metrics(y, on["p_teacher"].to_numpy(float), 0.5)
    row = {"teacher": tid, "videos": f"{split} ({len(on)} labeled)",
           "teacher acc.": f"{teacher['accuracy']:.3f}", "teacher bal. acc.": f"{teacher['balanced_accuracy']:.3f}",
           "teacher AUROC": _fmt(teacher["auroc"])}
    both = on[on["p_student"].notna()]
    if len(both) and final:
        s = binary_metrics(both["y"].astype(int).to_numpy(), both["p_student"].to_numpy(float), r.threshold_value(final))
        t = binary_metrics(both["y"].astype(int).to_numpy(), both["p_teacher"].to_numpy(float), 0.5)
        row.update({f"student ({final}) acc.": f"{s['accuracy']:.3f}", "student bal. acc.": f"{s['balanced_accuracy']:.3f}",
                    "student AUROC": _fmt(s["auroc"]),
                    "student beats teacher (bal. acc.)": "yes" if s["balanced_accuracy"] > t["balanced_accuracy"] else "no"})
    return row


def _verdict_listing(tid: str, v: pd.DataFrame, info: DatasetInfo) -> str:
    classes = info.classes
    shown = v.sort_values("video_id", key=lambda s: s.map(_id_key)).head(MAX_TEACHER_ROWS)
    table = pd.DataFrame({
        "video": shown["video_id"], "split": shown["split"],
        "true": shown["y"].map(lambda y: "?" if pd.isna(y) else classes[info.positive_index if y else 1 - info.positive_index]),
        "teacher": shown["teacher_label"].fillna(""), "p teacher": shown["p_teacher"].map(_fmt),
        "p student": shown["p_student"].map(_fmt),
        "teacher's text": shown["text"].fillna("").map(lambda t: t if len(t) <= MAX_TEXT_CHARS else t[:MAX_TEXT_CHARS] + " …")})
    more = f" (first {MAX_TEACHER_ROWS} of {len(v)})" if len(v) > MAX_TEACHER_ROWS else ""
    return (f"<details open><summary>Verdicts of teacher {html.escape(tid)}{more}</summary>"
            + _html_table(table, wide_last=True) + "</details>")


def _frame_counts(truth: pd.DataFrame, info: DatasetInfo) -> str:
    n = pd.to_numeric(truth["n_frames"], errors="coerce")
    if n.notna().sum() == 0:
        return _note("The manifest has no frame counts yet (they are filled by `hiddenemo extract` or from the videos).")
    y = truth["y"].astype("Float64").astype(float)
    return _img(plots.frame_counts(n, y, _short_classes(info)),
                "frames per video") + _note("As the paper's Figure 2: lengths vary widely, hence sampling rather "
                                            "than truncating or padding.")


def _coverage(work: Path, truth: pd.DataFrame) -> str:
    store = Store(work)
    groups, found, per_video = {}, {}, {}
    for vid in truth["video_id"]:
        if store.has(vid, "pose"):
            pose = store.load(vid, "pose")
            groups[vid] = coverage(pose)
            seen = np.asarray(pose[..., 2], dtype=np.float32) > MIN_CONFIDENCE
            found[vid] = {name: float(seen[:, sl].mean()) if len(seen) else 0.0 for name, sl in POSE_GROUPS.items()}
            if store.has(vid, "box"):
                per_video[vid] = video_coverage(store.load(vid, "box"), pose)
    if not groups:
        return _note("No pose arrays in the store: run `hiddenemo extract` (or ingest OpenPose output).")
    order = list(POSE_GROUPS)
    return _video_coverage(per_video) + _img(plots.coverage(pd.DataFrame.from_dict(groups, orient="index")[order],
                               pd.DataFrame.from_dict(found, orient="index")[order]), "keypoint coverage") + _note(
        "Dark bars: share of frames in which a group has at least half of its points "
        "(hiddenemo.data.keypoints.coverage); light bars: share of the group's points found over all frames; "
        "dots: videos. The body group includes 13 lower-body points (hips, legs, feet) that a seated, "
        "upper-body interview shot rarely shows, so its frame coverage can be low while the upper body is "
        "well tracked. Hands are the least reliable group, as the paper notes for its Figure 1.")


def _video_coverage(per_video: dict[str, dict]) -> str:
    """Per video: the share of frames with a person, a face and a hand; the videos with too little of a
    person or a face first and flagged (at most 40 rows: the rest are fine)."""
    if not per_video:
        return ""
    table = pd.DataFrame.from_dict(per_video, orient="index")
    table["low"] = [", ".join(low_coverage(c)) for c in per_video.values()]
    table = table.sort_values(["person", "face"]).rename_axis("video_id").reset_index()
    n_low = int((table["low"] != "").sum())
    shown = table.head(max(40, n_low)).copy()
    for part in ("person", "face", "hands"):
        shown[part] = shown[part].map(lambda share: f"{share:.0%}")
    return _html_table(shown.rename(columns={"low": f"under {LOW_COVERAGE:.0%}"})) + _note(
        f"Share of each video's frames with a person box, a face (half of its points or more) and a hand "
        f"(hiddenemo.data.keypoints.video_coverage); {n_low} of {len(table)} videos have a person or a face in "
        f"under {LOW_COVERAGE:.0%} of their frames"
        + (f"; the {len(table) - len(shown)} best-covered videos are not listed." if len(shown) < len(table) else ".")
        + " Hands are often out of an interview shot, so they are not flagged.")


def _skeleton(work: Path, truth: pd.DataFrame) -> str:
    from hiddenemo.extract.preview import to_pixels
    from hiddenemo.extract.skeleton import draw_skeleton

    store = Store(work)
    with_pose = [r for _, r in truth.iterrows() if store.has(r["video_id"], "pose")]
    if not with_pose:
        return _note("No pose arrays in the store to draw: run `hiddenemo extract` (or ingest OpenPose output).")
    has_video = [r for r in with_pose if isinstance(r["path"], str) and Path(r["path"]).exists()
                 and store.has(r["video_id"], "box")]
    row = (has_video or with_pose)[0]
    vid = row["video_id"]
    pose = store.load(vid, "pose", mmap=False)
    # Without a box, pose (normalised to the box) is drawn in a unit square scaled to 480 px.
    box = (store.load(vid, "box", mmap=False) if store.has(vid, "box")
           else np.tile(np.array([0, 0, 480, 480, 1], np.float32), (len(pose), 1)))
    xy, conf = to_pixels(pose, box)
    t = int(np.argmax((conf > 0.05).sum(1)))                     # the most completely seen frame
    frame = _decode_frame(Path(row["path"]), t) if has_video else None
    if frame is None:
        span = np.nanmax(np.where(conf[t, :, None] > 0.05, xy[t], np.nan), axis=0)
        frame = np.full((int(np.nan_to_num(span[1], nan=240)) + 20, int(np.nan_to_num(span[0], nan=320)) + 20, 3),
                        30, np.uint8)
        where = "on a blank canvas (no video file)"
    else:
        where = "on the video frame"
    # Draw on an enlarged frame so that thin face and hand connections stay visible.
    scale = max(1, int(np.ceil(640 / frame.shape[1])))
    import cv2
    big = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    drawn = draw_skeleton(big, xy[t] * scale + (scale - 1) / 2, conf[t], box[t] * np.array([scale] * 4 + [1]))
    title = f"video {vid}, frame {t}: 137 OpenPose points {where}"
    return _img(plots.image(drawn, title), "skeleton") + _note(
        f"{title}. Connections in OpenPose's colours (body by limb, face white, hands by finger), as the "
        "paper's Figure 1.")


def _patch_grid(work: Path, truth: pd.DataFrame) -> str:
    """An embedded frame's person crop as the backbone saw it, with the patch grid and the keypoints
    that read it (`pose_patch`, `hiddenemo.extract.patches`)."""
    import cv2

    from hiddenemo.extract.boxes import crop_window
    from hiddenemo.extract.embeddings import letterbox_geometry
    from hiddenemo.extract.patches import ARRAY, pixel_points, to_input_pixels

    store = Store(work)
    rows = [r for _, r in truth.iterrows() if store.has(r["video_id"], ARRAY) and isinstance(r["path"], str)
            and Path(r["path"]).exists()]
    if not rows:
        return _note("No keypoints bound to patches in the store (`hiddenemo extract --extract.patches_dim 16` "
                     "makes them; the `pose-patch` encoder reads them).")
    vid = rows[0]["video_id"]
    params = store.meta(vid, ARRAY)["params"]
    recipe, idx = params["patches"], store.load(vid, "frames_idx", mmap=False)
    pose, box = store.load(vid, "pose", mmap=False), store.load(vid, "box", mmap=False)
    t = int(idx[np.argmax((pose[idx, :, 2] > 0.05).sum(1))])            # the most completely seen embedded frame
    frame = _decode_frame(Path(rows[0]["path"]), t)
    window = crop_window(box[t], frame.shape[1], frame.shape[0], params["crop_margin"]) if frame is not None else None
    if window is None:
        return _note(f"video {vid}: frame {t} could not be read to draw its patch grid.")
    crop = frame[window[1]:window[3], window[0]:window[2]]
    size = recipe["size"]
    nh, nw, top, left = letterbox_geometry(*crop.shape[:2], size)
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[top:top + nh, left:left + nw] = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA)
    uv = to_input_pixels(pixel_points(pose[t], box[t]) - np.array(window[:2], np.float32), *crop.shape[:2], size)
    g = size // recipe["patch"]
    title = f"video {vid}, frame {t}: {int(np.isfinite(uv).all(1).sum())} keypoints on the {g}x{g} patch grid"
    return _img(plots.patch_grid(canvas, uv, recipe["patch"], title), "patch grid") + _note(
        f"{title}. Each found keypoint reads the patch tokens bilinearly at its position; the feature "
        f"({recipe['backbone']}, projected to {recipe['width']} dimensions) goes beside its position and offsets "
        "into the pose-patch encoder.")


def _decode_frame(path: Path, t: int) -> np.ndarray | None:
    from hiddenemo.extract import decode

    try:
        for i, rgb in decode.frames(path):
            if i == t:
                return rgb
            if i > t:
                break
    except UserError as e:
        log.warning("report: cannot read %s (%s); drawing the skeleton on a blank canvas", path, e)
    return None


def _config(r: Run) -> str:
    text = r.config_text()
    if text is None and r.ensemble is not None:
        return (_note(f"An ensemble ({r.ensemble['how']}); the members' configs are in "
                      "their own run directories.") +
                f"<details><summary>ensemble.json</summary><pre>{html.escape(json.dumps(r.ensemble, indent=2))}</pre></details>")
    if text is None:
        return _note("No config.yaml in this run.")
    return f"<details><summary>config.yaml</summary><pre>{html.escape(text)}</pre></details>"


# ------------------------------------------------------------------------------------- helpers

def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(str(text))}</p>'


def _html_table(df: pd.DataFrame, wide_last: bool = False) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    cls = ' class="wide-last"' if wide_last else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(x) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{float(x):.3f}"


def _labels_state(rows: pd.DataFrame) -> str:
    known = int(rows["y"].notna().sum())
    return "no videos" if rows.empty else "labels withheld" if known == 0 else \
        "labels known" if known == len(rows) else f"{known} of {len(rows)} labels known"


def _short_classes(info: DatasetInfo) -> list[str]:
    """The class names as counted (`Workspace.counted`): [negative, positive] for two, the classes for more."""
    if len(info.classes) > 2:
        return list(info.classes)
    return [info.classes[1 - info.positive_index], info.classes[info.positive_index]]


def _id_key(video_id: str) -> tuple:
    return (0, int(video_id), "") if str(video_id).isdigit() else (1, 0, str(video_id))
