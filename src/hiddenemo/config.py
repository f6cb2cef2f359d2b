"""Every configuration dataclass, in one place to look. Each lives beside the code it configures;
their attribute docstrings are the CLI's `--help`, and YAML files (configs/, `--config`) override
their fields.

| section | dataclass | command |
| --- | --- | --- |
| `extract:` | `ExtractConfig` | `hiddenemo extract` |
| `vlm:` | `VlmConfig` | `hiddenemo teach --teacher gemini|openai` |
| `ray:` | `RayOptions` | `--engine ray` of extract and teach |
| `pseudo.policy:` | `PseudoLabelPolicy` | stage 2 of `hiddenemo train` |
| `sampling:`, `model:`, `stage1:`, `stage2:`, `selection:`, `pseudo:`, `trainer:` | `TrainConfig` and its parts | `hiddenemo train` |
| (options) | `DemoConfig` | `hiddenemo demo` |
| (options) | `NoiseStudy` | `hiddenemo ablate --study teacher-noise` |
"""
from hiddenemo.demo import DemoConfig
from hiddenemo.dist.config import RayOptions
from hiddenemo.extract.config import ExtractConfig
from hiddenemo.teacher.config import PseudoLabelPolicy, VlmConfig
from hiddenemo.train.config import (ModelConfig, NoiseStudy, PseudoLabelConfig, SamplingConfig, SelectionConfig,
                                    StageConfig, TrainConfig, TrainerConfig)

__all__ = ["DemoConfig", "ExtractConfig", "ModelConfig", "NoiseStudy", "PseudoLabelConfig", "PseudoLabelPolicy",
           "RayOptions", "SamplingConfig", "SelectionConfig", "StageConfig", "TrainConfig", "TrainerConfig", "VlmConfig"]
