"""The model card, `MODEL_DIR/README.md`: what a person deciding whether to use the model needs, in
the order they ask it (what it predicts, from what data, how well, for what, needing which models).
Written from `model.json` alone, so the card never says more than the directory holds."""
from __future__ import annotations

from hiddenemo.export.recipe import needed_components

# Licences of the weights themselves (a package's own licence can differ), as the project README's
# "Models and their licences" table gives them.
WEIGHTS = {
    "ssd": ("SSD-MobileNet-v2 COCO", "Apache-2.0 (TensorFlow model zoo)"),
    "yolo": ("Ultralytics YOLO", "AGPL-3.0"),
    "mediapipe": ("MediaPipe Holistic", "Apache-2.0"),
    "openpose": ("OpenPose JSON (made outside hiddenemo)", "if made by OpenPose: non-commercial (CMU academic licence)"),
    "dinov2-s": ("DINOv2 ViT-S/14", "Apache-2.0"),
    "dinov2": ("DINOv2 (transformers)", "Apache-2.0"),
    "minilm": ("all-MiniLM-L6-v2", "Apache-2.0"),
    "text-encoder": ("the text encoder named above", "its own (see its model card)"),
    "gemini": ("Gemini (API)", "Google's API terms"),
    "openai": ("an OpenAI-compatible server's model", "the served model's licence"),
}
METRIC_NAMES = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "macro_f1": "macro-F1",
                "auroc": "AUROC"}


def model_card(d: dict) -> str:
    t, cv, r = d["training"], d["cross_validated"], d["recipe"]
    if d["positive"] is None:                        # more than two classes
        title, what = " / ".join(d["classes"]), ("the probability of each of the classes " + ", ".join(
            f"**{c}**" for c in d["classes"]) + " for the person's hidden emotional state")
        counts = ", ".join(f"{n} {c}" for c, n in t["per_class"].items())
    else:
        negative = next(c for c in d["classes"] if c != d["positive"])
        title, what = f"{d['positive']} vs {negative}", (
            f"the probability that the person's hidden emotional state is **{d['positive']}** (the positive class) "
            f"rather than **{negative}**")
        counts = f"{t['n_positive']} {d['positive']}, {t['n_labeled'] - t['n_positive']} {negative}"
    lines = [
        f"# hiddenemo model: {title}", "",
        f"Predicts, for an interview video, {what}, from {', '.join(d['modalities'])}. "
        f"Exported by hiddenemo {d['hiddenemo_version']} on {d['created']} from run `{d['source']['run']}` "
        f"(model `{d['source']['model']}`).", "",
        "## Use", "",
        "```bash",
        "hiddenemo apply --model THIS_DIR --videos VIDEOS_OR_FILE --out predictions.csv",
        "```", "",
        "```python",
        "import hiddenemo",
        "model = hiddenemo.load_model('THIS_DIR')",
        "table = model.predict(['interview.mp4'])",
        "```", "",
        "## Training data", "",
        f"- Dataset: {d['dataset']['name']}" + (f", protocol {d['dataset']['protocol']}" if d['dataset']['protocol'] else ""),
        f"- {t['n_labeled']} labeled training videos ({counts}), {t['folds']['k']}-fold cross-validation"
        + (" grouped by subject" if t["folds"].get("grouped_by_subject") else ""),
    ]
    if t.get("n_pseudo") is not None:
        lines.append(f"- Stage 2 also learnt from {t['n_pseudo']} unlabeled videos pseudo-labeled by the teacher "
                     f"`{t['pseudo_teacher']}` (transductive when they are the target videos)")
    encoders = ", ".join(f"{m}: {d['encoders'].get(m, 'default')}" for m in d["modalities"])
    lines += [
        f"- Encoders: {encoders}" + (" (fused)" if d["fused"] else ""),
        f"- Predicting ensemble: {len(d['members'])} model(s), {d['how']}", "",
        "## Cross-validated figures", "",
        f"Out-of-fold on the {cv['n']} labeled training videos, with {int(cv['level'] * 100)} % bootstrap intervals"
        + (" (resampling subjects)" if cv["grouped_by_subject"] else "") + ". The threshold was chosen on the same "
        "predictions, so accuracy-type figures are slightly optimistic; AUROC is not affected.", "",
        "| metric | estimate | interval |", "| --- | --- | --- |",
        *(f"| {name} | {cv[k]['estimate']:.3f} | [{cv[k]['low']:.3f}, {cv[k]['high']:.3f}] |"
          for k, name in METRIC_NAMES.items()), "",
        (f"Decision: {d['threshold']['how']}." if d["positive"] is None else
         f"Threshold: {d['threshold']['threshold']:.3f} ({d['threshold']['how']})."), "",
        "## Intended use", "",
        "Research on hidden-emotion understanding from interview-style videos like the training data (one seated "
        "person, upper body visible). The probabilities are a model's estimate, not a fact about a person: do not "
        "use them for decisions about individuals (hiring, credibility, health). On videos unlike the training "
        "data (other settings, cameras, cultures) the figures above do not hold; measure on labeled videos of "
        "your own first.", "",
        "## Features (the recipe apply follows)", "",
        "| array | producer | version | settings |", "| --- | --- | --- | --- |",
        *(f"| `{name}` | {a['producer']} | {a['version']} | {_settings(a['params'])} |" for name, a in r["arrays"].items()),
    ]
    if r["text"]:
        teacher = r["text"]["teacher"]
        lines += ["", f"Text: the `{teacher['kind']}` teacher (id `{teacher['teacher_id']}`, model `{teacher['model']}`, "
                      f"prompt `{teacher['prompt_version']}`, {teacher['variant']} texts) encoded with "
                      f"`{r['text']['encoder']}`."
                  + (" An API teacher: apply needs its key in the environment and pays for the calls."
                     if teacher["kind"] in ("gemini", "openai") else "")]
    if r["extract"] and r["extract"]["keypoints"] == "openpose-json":
        lines += ["", "Keypoints came from OpenPose JSON made outside hiddenemo: apply needs them (`--openpose DIR`), "
                      "or `--keypoints mediapipe` to use MediaPipe Holistic instead (another extractor: expect shifted "
                      "probabilities)."]
    if "events" in r["arrays"]:
        lines += ["", "Events came from a dataset's timed gesture annotations: apply needs them (`--annotations "
                      "FILE`), or `--without '[events]'` to predict without them."]
    components = needed_components(r) + (["openpose"] if (r["extract"] or {}).get("keypoints") == "openpose-json" else [])
    lines += ["", "## Models it needs, and their licences", "",
              "| model | licence of its weights |", "| --- | --- |",
              *(f"| {WEIGHTS[c][0]} | {WEIGHTS[c][1]} |" for c in components)]
    lines += ["", "The packages that carry them, at the versions apply requires:", "",
              "| package | version | licence (as its metadata declares) | for |", "| --- | --- | --- | --- |",
              *(f"| {name} | {p['version']} | {p['licence']} | {', '.join(p['for'])} |" for name, p in r["packages"].items())]
    if not r["packages"]:
        lines.append("| (none beyond hiddenemo and torch) | | | |")
    lines += ["", "Check each licence against your use; the licence of the training videos binds this model too.", ""]
    return "\n".join(lines)


def _settings(params: dict) -> str:
    text = ", ".join(f"{k}={v}" for k, v in params.items() if not isinstance(v, dict))
    return text.replace("|", "/") or "-"
