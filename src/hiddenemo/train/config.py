"""What `hiddenemo train` can be told, one dataclass per concern.

The attribute docstrings are the `--help` text; YAML files under `configs/` only override fields
(`hiddenemo train --config configs/cpu.yaml`). `TrainConfig` gathers the sections; the resolved
config of a run is saved as `WORK/runs/<run>/config.yaml`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Literal, Optional

from hiddenemo.errors import UserError
from hiddenemo.teacher.config import PseudoLabelPolicy


@dataclass
class SamplingConfig:
    """How rows are drawn from each video's long sequences (fresh every epoch in training)."""

    n_pose: int = 4000
    """Keypoint frames sampled per video (the paper: 4000)."""
    n_frames: int = 800
    """Frame embeddings sampled per video (the paper: 800)."""
    min_frame_gap: int = 5
    """Sampled frame embeddings are more than this many raw frames apart (the paper: > 5)."""
    n_events: int = 1000
    """Rows of the `events` multi-hot sequence sampled per video."""
    offsets: list[int] = field(default_factory=lambda: [8, 16, 24])
    """Keypoint offset features to frames t-k, taken at full rate before sampling ([] = none)."""
    votes: int = 5
    """Samplings per video at inference: the first is the fixed one, the rest seeded random draws;
    the prediction is their mean probability."""


@dataclass
class ModelConfig:
    """Which modalities and encoders make the model."""

    modalities: list[str] = field(default_factory=lambda: ["pose", "frames", "text"])
    """Modalities to use (any of pose, frames, text, events); a video missing one is masked, not dropped."""
    encoders: dict[str, str] = field(default_factory=dict)
    """Registry name of the encoder per modality (`hiddenemo.models.registry`); unset = the modality's default."""
    candidates: dict[str, list[str]] = field(default_factory=dict)
    """More encoders to try per modality (e.g. {events: [events-transformer]}): stage 1 cross-validates
    each on the labeled training videos and keeps, per modality, the one with the best out-of-fold
    AUROC; stage 2 and prediction use that one."""
    encoder_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Extra keyword arguments for an encoder, keyed by encoder name (e.g. {events-stats: {hidden: 16}})
    or by modality (e.g. {pose: {depth: 2}}); a name key wins over the modality's."""
    dim: int = 256
    """Width every encoder projects to, and of the fusion layer (the paper: 256)."""
    fusion: str = "concat"
    """Fusion of the modality features: concat (the paper's concatenation + residual linear), cross-attention,
    or late (each modality keeps its stage-1 head; stage 2 starts as their logit average and learns the mix)."""
    late_mix: Literal["equal", "stacked"] = "equal"
    """Late fusion's starting mix of the stage-1 logits: equal (their average), or stacked — the
    weights of a non-negative logistic regression of the labels on the stage-1 models' out-of-fold
    logits (in stage-2 fold k, of the other folds' videos only), scaled to sum to 1. Out-of-fold logits
    show how far each modality carries to videos its model never saw, which the in-sample logits
    that stage 2 trains on do not."""
    text_encoder: str = "minilm"
    """Which text embedding to read: the store array `text.<text_encoder>` written by `hiddenemo embed`."""


@dataclass
class PooledConfig:
    """The per-video statistics read by the pooled encoders (`events-stats`, `pose-stats`,
    `frames-stats`; `hiddenemo.data.pooled`)."""

    events: list[str] = field(default_factory=lambda: ["class_rates", "length"])
    """Statistics of the `events` sequence, any of: group_rates, group_shares (per body-part group of
    the dataset's gesture taxonomy), class_rates, class_shares (per gesture class), length (log minutes)."""
    person_baseline: Literal["none", "subject", "video-start"] = "none"
    """Label-free person-relative statistics: subject = minus the mean of the same person's videos
    (by subject_id; uses the unlabeled target videos' features too, so it is transductive and said so);
    video-start = minus the statistics of the video's own first `baseline_minutes`; none = as measured."""
    baseline_minutes: float = 2.0
    """Length of the video-start baseline."""
    train_window: float = 0.8
    """In training each draw summarises a random window covering at least this share of the video
    (resampling augmentation for pooled inputs); 1.0 = always the whole video. Inference uses the whole video."""


@dataclass
class StageConfig:
    """Optimisation of one training stage."""

    epochs: int = 20
    """Most epochs to train; cross-validation picks how many of them the final model gets."""
    lr: float = 3e-4
    """AdamW learning rate (constant)."""
    batch_size: int = 8
    """Videos per batch."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    focal_alpha: float = 0.25
    """Focal loss alpha: weight of the positive class (0.5 = both equal; negative = off). Two classes
    only: with more, the softmax focal loss weighs classes through `class_balanced`."""
    focal_gamma: float = 2.0
    """Focal loss gamma (0 = weighted cross-entropy; with `class_balanced`, class-weighted cross-entropy)."""
    resamples: int = 1
    """Fresh samplings of every video per epoch (the paper's resampling augmentation)."""
    dropout: float = 0.1
    """Dropout in the encoders and the fusion layer."""
    class_balanced: bool = False
    """Weight samples so each class carries an equal share of the loss (`hiddenemo.eval.labelshift.class_weights`)."""
    contrastive_weight: float = 0.0
    """Weight of a supervised contrastive term on the encoder features (the paper's "contrastive"
    ablation row; 0 = off, the paper's final choice)."""
    epoch_zero: bool = False
    """Validate the starting weights too, as epoch 0, so that cross-validation may choose no training at
    all. Meant for stage 2 from stage-1 encoders: with late fusion its epoch 0 is the stage-1 models'
    logits mixed (`model.late_mix`), and fine-tuning must then beat that mix out of fold to be kept."""


@dataclass
class SelectionConfig:
    """Honest model selection: cross-validation on the labeled training videos only."""

    folds: int = 5
    """Number of cross-validation folds over the labeled training videos."""
    group_by_subject: bool = True
    """Keep all videos of one subject in the same fold when subject ids are known (StratifiedGroupKFold)."""
    epoch_metric: Literal["auroc", "loss", "balanced_accuracy", "macro_f1"] = "auroc"
    """Out-of-fold metric that picks the number of epochs (loss is minimised, the others maximised).
    More than two classes: auroc is the mean one-vs-rest AUROC, balanced_accuracy and macro_f1 are
    taken at the arg-max (the usual choices there)."""
    threshold: Literal["cv-accuracy", "balanced", "quantile", "fixed"] = "balanced"
    """Decision threshold (two classes): cv-accuracy / balanced = the one maximising out-of-fold accuracy /
    balanced accuracy; quantile = the paper's trick, predict `quantile_prior` of the target videos positive
    (assumes that prior is known); fixed = `fixed_threshold`. More classes have no threshold: see `class_prior`."""
    class_prior: Literal["train", "em"] = "train"
    """More than two classes: the prediction is the arg-max of the class probabilities as trained
    (train), or of the probabilities re-weighted to the target videos' class prior estimated by EM
    from their predictions (em; transductive, and said so in the predictions' .json)."""
    threshold_bootstrap: int = 200
    """For cv-accuracy / balanced: the threshold is the median of the best cuts of this many bootstrap
    resamples of the out-of-fold predictions (seeded), steadier than the one best cut on a few dozen
    videos, whose score curve is jagged; 0 = the best cut of the predictions as they are."""
    quantile_prior: Optional[float] = None
    """Positive fraction assumed for the target set by the quantile threshold (required for it)."""
    fixed_threshold: float = 0.5
    """Threshold used by `threshold: fixed`."""
    final_model: Literal["fold-ensemble", "retrain"] = "fold-ensemble"
    """The model that predicts: fold-ensemble = the mean of the k fold models at the chosen epoch (the
    models whose out-of-fold probabilities chose the threshold, so threshold and probabilities share a
    scale); retrain = one more fit on all labeled videos for the chosen epochs (its probabilities can
    drift from the threshold's scale)."""


@dataclass
class PseudoLabelConfig:
    """Which teacher labels the unlabeled videos for stage 2 (`hiddenemo.teacher.policy`)."""

    teacher: Optional[str] = "behaviour"
    """Teacher id whose verdicts (WORK/teacher/<id>.jsonl) become pseudo-labels; null = stage 2 on labeled videos only."""
    policy: PseudoLabelPolicy = field(default_factory=PseudoLabelPolicy)
    """How verdicts become targets: confidence cut-off, soft targets, weights, calibration."""
    splits: list[str] = field(default_factory=lambda: ["test"])
    """Splits whose videos may be pseudo-labeled (transductively: their features and teacher verdicts, never their labels)."""
    in_folds: bool = False
    """Stage 2's cross-validation gives each fold's held-out videos the teacher's pseudo-labels in that
    fold's training (calibrated on the other folds), as the target videos have them: the out-of-fold
    figures, and the epochs chosen on them, then measure the student on videos it was taught by the
    teacher, which is what it will be on the target. false: held-out videos are only validated on,
    and the out-of-fold figures cannot see the teacher's errors being learnt."""
    use: Literal["always", "if-better"] = "always"
    """if-better: stage 2 is cross-validated with the pseudo-labels (`in_folds`) and without them, and
    keeps whichever has the better out-of-fold AUROC (with them on a tie) — a weak teacher's labels can
    teach the student its errors; selection.json records both figures. always: with them."""

    def __post_init__(self):
        if self.use == "if-better" and not self.in_folds:
            raise UserError("pseudo.use: if-better needs pseudo.in_folds: true (only then do the out-of-fold figures "
                             "with pseudo-labels measure videos the teacher labelled, and the comparison is fair)")


@dataclass
class SelfTrainingConfig:
    """Confidence-filtered self-training after stage 2 (`hiddenemo.train.selftrain`): rounds in which the
    student relabels the target videos and keeps only its confident answers."""

    rounds: int = 0
    """Rounds after stage 2 (0 = off); the last round's model is the stage-2 model."""
    keep: float = 0.5
    """Share of the target videos kept each round: those whose logit lies farthest from the threshold."""
    weight: float = 0.5
    """Loss weight of a kept target video (a labeled video weighs 1)."""


@dataclass
class TrainerConfig:
    """Where the fits run (Lightning `Trainer` arguments); see docs/scale.md."""

    accelerator: str = "cpu"
    """cpu, gpu (cuda), mps or auto."""
    devices: int | str = 1
    """Processes per node (GPUs, or CPU processes); `auto` = all GPUs of the node."""
    num_nodes: int = 1
    """Nodes (with torchrun or srun starting one process per device on each)."""
    strategy: str = "auto"
    """auto (one process), ddp (several: one process per device; samplers shard the videos,
    metrics are gathered, rank 0 writes the checkpoints). stage*.batch_size is per process."""


@dataclass
class TrainConfig:
    """Everything a run depends on; saved resolved as WORK/runs/<run>/config.yaml."""

    seed: int = 0
    """Seed for weights, folds, shuffling and every video's sampling draws."""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """How many rows are drawn from each video's sequences."""
    pooled: PooledConfig = field(default_factory=PooledConfig)
    """The per-video statistics of the pooled encoders (events-stats, ...) and their person baseline."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Modalities, encoders and fusion."""
    stage1: StageConfig = field(default_factory=StageConfig)
    """Optimisation of stage 1 (each modality alone, labeled videos)."""
    stage2: StageConfig = field(default_factory=lambda: StageConfig(epochs=10, lr=3e-5))
    """Optimisation of stage 2 (fused, labeled + pseudo-labeled videos, small learning rate)."""
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    """Cross-validation folds, epoch metric and threshold method."""
    pseudo: PseudoLabelConfig = field(default_factory=PseudoLabelConfig)
    """Teacher and policy for the pseudo-labels of stage 2."""
    self_training: SelfTrainingConfig = field(default_factory=SelfTrainingConfig)
    """Rounds of confidence-filtered self-training after stage 2 (0 = off)."""
    stage1_enabled: bool = True
    """Run stage 1 (each modality pretrained alone); false = stage 2 from freshly initialised encoders
    (the paper's "no pretraining" rows)."""
    stage2_enabled: bool = True
    """Run stage 2 (all modalities fused, fine-tuned on labeled + pseudo-labeled videos)."""
    threads: Optional[int] = None
    """torch CPU threads of a fit (null = torch's default; with several workers, the cores shared
    among the fits that run at once); 1 is fastest on a machine shared with other jobs."""
    workers: int = 0
    """Fits trained at once, each in its own process (0 = one per core, 1 = one after the other in
    this process). The fits of a stage (stage 1: the folds of every modality; stage 2: its folds) are
    independent and each seeded from its own directory, so with `threads` set the run's files are the
    same for any number of workers. A run resumes with any number. Not for a trainer on GPUs or
    several devices (DDP): there the fits run one after the other."""
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    """Devices, nodes and strategy (ddp) of every fit; see docs/scale.md."""


PLACEMENT = ("workers",)
"""TrainConfig fields that say where a run's fits run, not what they compute: a run resumes with other values."""

NOISE_KINDS = ("uniform", "positives", "negatives")


@dataclass
class NoiseStudy:
    """The teacher-noise study's options (`hiddenemo ablate --study teacher-noise`)."""

    noise_rates: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    """teacher-noise: the simulated teacher's share of flipped labels, each a stage 2 per cell."""
    splits: int = 3
    """teacher-noise: subject-grouped splits of the labeled videos; each in turn is the simulated target."""
    noise_kind: Literal["uniform", "positives", "negatives"] = "uniform"
    """teacher-noise: flips drawn from every video (uniform), or that share of one class flipped
    (positives: the teacher misses positives; negatives: it calls negatives positive)."""
    real: bool = True
    """teacher-noise: also the real teacher (the base config's pseudo.teacher) and its self-training rounds."""
    weights: list[float] = field(default_factory=list)
    """teacher-noise: pseudo-label weights tried with the real teacher (default: the base policy's)."""
    cutoffs: list[float] = field(default_factory=list)
    """teacher-noise: teacher confidence cut-offs (min_confidence) tried with the real teacher."""

    def __post_init__(self):
        if self.noise_kind not in NOISE_KINDS:
            raise UserError(f"noise kind must be one of {NOISE_KINDS}, got {self.noise_kind!r}")
        if not all(0.0 <= r <= 1.0 for r in self.noise_rates):
            raise UserError(f"noise rates must lie in [0, 1], got {list(self.noise_rates)}")
        if self.splits < 2:
            raise UserError("the teacher-noise study needs at least 2 subject splits")


def to_dict(config: Any) -> dict:
    return asdict(config)


def from_dict(cls: type, data: dict | None) -> Any:
    """Build a (nested) config dataclass from a plain dict, refusing keys it does not know."""
    data = dict(data or {})
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}; known: {sorted(known)}")
    kwargs = {}
    for name, value in data.items():
        default = getattr(cls(), name)
        kwargs[name] = from_dict(type(default), value) if is_dataclass(default) else value
    return cls(**kwargs)


def load_train_config(yaml_files=(), overrides: dict | None = None) -> TrainConfig:
    """The TrainConfig of the YAML overlays `yaml_files` applied in order, then `overrides` (a nested dict,
    e.g. {"seed": 1, "model": {"dim": 32}}), merged exactly as `hiddenemo train --config A --config B
    --seed 1 --model.dim 32` merges them (the same parser), so library callers (demo, ablate) need no
    command line."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_class_arguments(TrainConfig, as_group=False)
    argv = [arg for path in yaml_files for arg in ("--config", str(path))]
    for key, value in _flatten(TrainConfig, overrides or {}):
        argv += [f"--{key}", json.dumps(value)]
    namespace = parser.parse_args(argv)
    return from_dict(TrainConfig, {k: v for k, v in namespace.as_dict().items() if k != "config"})


def _flatten(cls: type, overrides: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """[("model.dim", 32), ...]: a dict given for a dataclass section opens into its fields; any other
    value (a list, a plain dict such as encoder_args) stays whole, as on the command line."""
    out, defaults = [], cls()
    for key, value in overrides.items():
        section = getattr(defaults, key, None)
        if isinstance(value, dict) and is_dataclass(section):
            out += _flatten(type(section), value, f"{prefix}{key}.")
        else:
            out.append((prefix + key, value))
    return out
