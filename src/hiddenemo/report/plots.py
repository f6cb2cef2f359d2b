"""The report's figures, each a function from plain tables/arrays to PNG bytes (matplotlib, Agg).

No file reading here: `page.py` gathers the run and workspace files and hands over what to draw.
"""
from __future__ import annotations

import io

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 100
CLASS_COLOURS = ("#d62728", "#1f77b4")          # negative, positive


def class_colours(n: int) -> tuple[str, ...]:
    """A colour per counted class: [negative, positive] for two, matplotlib's tab10 for more."""
    return CLASS_COLOURS if n <= 2 else tuple(plt.get_cmap("tab10")(k % 10) for k in range(n))


def to_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def roc_pr(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    """ROC and precision-recall curves; `curves` maps a name to (y 0/1, p_positive)."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(11, 4.6))
    prevalence = None
    for name, (y, p) in curves.items():
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, p)
        ax_roc.plot(fpr, tpr, lw=1.8, label=f"{name} (AUROC {roc_auc_score(y, p):.2f}, n={len(y)})")
        precision, recall, _ = precision_recall_curve(y, p)
        ax_pr.step(recall, precision, where="post", lw=1.8,
                   label=f"{name} (AP {average_precision_score(y, p):.2f})")
        prevalence = float(np.mean(y))
    ax_roc.plot([0, 1], [0, 1], ls=":", c="grey", lw=1, label="chance")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1.02))
    if prevalence is not None:
        ax_pr.axhline(prevalence, ls=":", c="grey", lw=1, label=f"chance (positive share {prevalence:.2f})")
    ax_pr.set(xlabel="recall", ylabel="precision", title="Precision-recall", xlim=(0, 1), ylim=(0, 1.02))
    for ax in (ax_roc, ax_pr):
        ax.legend(fontsize=8, loc="lower right" if ax is ax_roc else "lower left")
        ax.grid(alpha=0.3)
    return to_png(fig)


def confusion(matrices: dict[str, np.ndarray], classes: list[str]) -> bytes:
    """Confusion matrices `[[tn, fp], [fn, tp]]` (rows truth, columns prediction), side by side;
    `classes` = [negative, positive], or the C classes of a C x C matrix."""
    size = max(1.0, len(classes) / 2.5)
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.8 * size * len(matrices), 3.4 * size), squeeze=False)
    for ax, (title, m) in zip(axes[0], matrices.items()):
        m = np.asarray(m)
        ax.imshow(m, cmap="Blues", vmin=0, vmax=max(int(m.max()), 1))
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, str(int(v)), ha="center", va="center", fontsize=14,
                    color="white" if v > m.max() / 2 else "black")
        ax.set_xticks(range(len(classes)), [f"pred. {c}" for c in classes], rotation=0 if len(classes) <= 3 else 45)
        ax.set_yticks(range(len(classes)), [f"true {c}" for c in classes])
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return to_png(fig)


def votes(pred: pd.DataFrame, threshold: float | None, classes: list[str], column: str = "p_positive") -> bytes:
    """Each video's probability (`column`) with its vote spread (± std over the k samplings), sorted;
    coloured by the true class when known (column `y`: the counted class, NaN unknown). More than two
    classes: `column` is the predicted class's probability and there is no threshold (None)."""
    pred = pred.sort_values(column).reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(11, 3.8))
    x = np.arange(len(pred))
    y = pred["y"].astype(float) if "y" in pred else pd.Series(np.nan, index=pred.index)
    colours = class_colours(len(classes))
    groups = [("unknown label", y.isna(), "grey")] + [(f"true {c}", y == k, colours[k]) for k, c in enumerate(classes)]
    for label, mask, colour in groups:
        mask = mask.to_numpy()
        if mask.any():
            ax.errorbar(x[mask], pred[column][mask], yerr=pred["vote_std"].fillna(0)[mask], fmt="o", ms=4,
                        capsize=2, color=colour, label=label)
    if threshold is not None:
        ax.axhline(threshold, ls="--", c="black", lw=1, label=f"threshold {threshold:.2f}")
    ax.set(ylabel=f"p({classes[1]})" if len(classes) == 2 else "p(predicted class)", ylim=(-0.02, 1.02), xlim=(-1, len(pred)),
           xlabel="videos, sorted by probability" + ("" if len(pred) > 60 else " (ids below)"))
    if len(pred) <= 60:
        ax.set_xticks(x, pred["video_id"], rotation=90, fontsize=7)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3, axis="y")
    return to_png(fig)


def training_curves(histories: dict[str, pd.DataFrame]) -> bytes:
    """Per stage/modality: losses and validation AUROC by epoch; thin lines per fold, thick = mean."""
    names = list(histories)
    fig, axes = plt.subplots(len(names), 2, figsize=(11, 2.6 * len(names)), squeeze=False)
    for row, name in zip(axes, names):
        h = histories[name]
        h = h[pd.to_numeric(h["fold"], errors="coerce").notna()]      # cross-validation folds only
        for column, style, ax in (("train_loss", "-", row[0]), ("val_loss", "--", row[0]), ("val_auroc", "-", row[1])):
            if column not in h or h[column].isna().all():
                continue
            for _, fold in h.groupby("fold"):
                ax.plot(fold["epoch"], fold[column], style, lw=0.7, alpha=0.35,
                        color="C0" if column == "train_loss" else "C1" if column == "val_loss" else "C2")
            mean = h.groupby("epoch")[column].mean()
            ax.plot(mean.index, mean.values, style, lw=2.2, label=f"{column} (mean of folds)",
                    color="C0" if column == "train_loss" else "C1" if column == "val_loss" else "C2")
        row[0].set(title=f"{name}: loss", xlabel="epoch")
        row[1].set(title=f"{name}: validation AUROC", xlabel="epoch", ylim=(0, 1))
        row[1].axhline(0.5, ls=":", c="grey", lw=1)
        for ax in row:
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    fig.tight_layout()
    return to_png(fig)


def frame_counts(n_frames: pd.Series, labels: pd.Series | None, classes: list[str]) -> bytes:
    """Histogram of video lengths (the paper's Figure 2), split by class where known."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    n = n_frames.astype(float)
    bins = np.histogram_bin_edges(n.dropna(), bins=min(30, max(5, n.notna().sum() // 3)))
    parts = [(n[labels.isna()] if labels is not None else n, "unlabeled" if labels is not None else "all", "grey")]
    if labels is not None:
        parts += [(n[labels == k], c, class_colours(len(classes))[k]) for k, c in enumerate(classes)]
    ax.hist([p.dropna() for p, _, _ in parts], bins=bins, stacked=True, color=[c for _, _, c in parts],
            label=[f"{name} ({p.notna().sum()})" for p, name, _ in parts])
    ax.set(xlabel="frames per video", ylabel="videos",
           title=f"Video length: median {np.nanmedian(n):.0f}, range {np.nanmin(n):.0f}-{np.nanmax(n):.0f}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return to_png(fig)


def coverage(frames: pd.DataFrame, points: pd.DataFrame) -> bytes:
    """Per keypoint group (columns), one row per video: the share of frames with at least half of the
    group's points (`frames`) and the share of its points found (`points`); bars = mean, dots = videos."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    rng = np.random.default_rng(0)
    for offset, table, colour, label in ((-0.2, frames, "#1f77b4", "frames with >= half of the points"),
                                         (0.2, points, "#9ecae1", "points found")):
        for i, g in enumerate(table.columns):
            v = table[g].to_numpy(float)
            ax.bar(i + offset, np.mean(v), color=colour, width=0.38, label=label if i == 0 else None)
            ax.plot(i + offset + rng.uniform(-0.1, 0.1, len(v)), v, "o", ms=2.5, color="black", alpha=0.5)
            ax.text(i + offset, min(np.mean(v), 1.0) + 0.03, f"{np.mean(v):.0%}", ha="center", fontsize=8)
    ax.set_xticks(range(len(frames.columns)), frames.columns)
    ax.set(ylim=(0, 1.18), ylabel="share", title=f"Keypoint coverage per group ({len(frames)} videos)")
    ax.legend(fontsize=8, loc="upper right", ncol=2)
    ax.grid(alpha=0.3, axis="y")
    return to_png(fig)


def image(rgb: np.ndarray, title: str) -> bytes:
    """An RGB image with a title, at its own size (at least 480 px wide)."""
    h, w = rgb.shape[:2]
    scale = max(1.0, 480 / w)
    fig, ax = plt.subplots(figsize=(w * scale / DPI, h * scale / DPI + 0.4))
    ax.imshow(rgb, interpolation="nearest" if scale > 1 else "antialiased")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return to_png(fig)


def patch_grid(rgb: np.ndarray, uv: np.ndarray, patch: int, title: str) -> bytes:
    """The letterboxed person crop (S, S, 3) with its patch grid, and the found keypoints (V, 2) in its
    pixels: which patch token each point reads."""
    fig, ax = plt.subplots(figsize=(5.2, 5.6))
    ax.imshow(rgb)
    for line in range(0, rgb.shape[0] + 1, patch):
        ax.axhline(line - 0.5, c="white", lw=0.4, alpha=0.6)
        ax.axvline(line - 0.5, c="white", lw=0.4, alpha=0.6)
    from hiddenemo.data.layout import POSE_GROUPS

    for (name, part), colour in zip(POSE_GROUPS.items(), ("#ff7f0e", "#2ca02c", "#d62728")):
        ax.scatter(uv[part, 0], uv[part, 1], s=9, c=colour, label=name, edgecolors="black", linewidths=0.3)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    ax.axis("off")
    return to_png(fig)


def noise_curve(table: pd.DataFrame, crossing: float | None, crossing_vs_none: float | None = None) -> bytes:
    """The teacher-noise study: the student's AUROC gain against the pseudo-labels' noise, over stage 1
    (left) and over stage 2 without pseudo-labels (right: the pseudo-labels' own effect). Simulated
    teacher: line with 95 % intervals; real teacher and self-training: marked points."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), sharex=True)
    sim = table[table["kind"] == "simulated"].sort_values("teacher_noise")
    panels = (("gain_auroc", "student AUROC − stage-1 AUROC", crossing),
              ("gain_vs_none", "student AUROC − AUROC without pseudo-labels", crossing_vs_none))
    for ax, (column, label, cross) in zip(axes, panels):
        def bars(rows):
            return np.nan_to_num(np.array([rows[column] - rows[f"{column}_lo"], rows[f"{column}_hi"] - rows[column]],
                                          float).reshape(2, -1))
        ax.errorbar(sim["teacher_noise"], sim[column], yerr=bars(sim), marker="o", capsize=3, lw=1.8,
                    color="#1f77b4", label="simulated teacher (label flips)")
        ax.axhline(0, color="black", lw=0.8)
        none = table[table["kind"] == "none"]
        if column == "gain_auroc" and len(none):
            ax.axhline(float(none["gain_auroc"].iloc[0]), color="grey", ls="--", lw=1,
                       label="stage 2 without pseudo-labels")
        for kind, marker, colour in (("real", "*", "#d62728"), ("self-training", "D", "#2ca02c")):
            for r in table[table["kind"] == kind].to_dict(orient="records"):
                ax.errorbar([r["teacher_noise"]], [r[column]], yerr=bars(pd.Series(r)), capsize=3, marker=marker,
                            ms=12 if marker == "*" else 7, color=colour, ls="none", label=r["arm"])
        if cross is not None:
            ax.axvline(cross, color="#1f77b4", ls=":", lw=1)
            ax.annotate(f"crossing {cross:.0%}", (cross, 0), textcoords="offset points", xytext=(4, 6), fontsize=8)
        ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.set_xlabel("pseudo-label noise on the simulated target (share wrong)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return to_png(fig)
