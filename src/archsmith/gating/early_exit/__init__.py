"""Early-exit networks: JEI-DNN jointly-learned exit gates (Regol et al., ICLR 2024) and the
confidence-threshold baseline, with per-sample exit and FLOP records and calibration error."""

from archsmith.gating.early_exit.calibration import expected_calibration_error
from archsmith.gating.early_exit.gates import JointGate, exit_distribution, uncertainty_features
from archsmith.gating.early_exit.models import early_exit_cnn, early_exit_mlp
from archsmith.gating.early_exit.network import EarlyExitNetwork

__all__ = [
    "EarlyExitNetwork",
    "JointGate",
    "early_exit_cnn",
    "early_exit_mlp",
    "exit_distribution",
    "expected_calibration_error",
    "uncertainty_features",
]
