"""Models: encoders behind one interface (`forward_features(batch) -> (B, dim)`), a registry, fusion
and losses. Imports only torch (and torch_geometric for the graph layers); see docs/models.md."""
from hiddenemo.models import pooled, pose, pose_patch, sequence, text  # noqa: F401  the built-in encoders register on import
from hiddenemo.models.fusion import Classifier, FusionModel, load_encoder_weights
from hiddenemo.models.losses import focal_loss, supervised_contrastive_loss
from hiddenemo.models.registry import build_encoder, list_encoders, register_encoder

__all__ = ["Classifier", "FusionModel", "build_encoder", "focal_loss", "list_encoders",
           "load_encoder_weights", "register_encoder", "supervised_contrastive_loss"]
