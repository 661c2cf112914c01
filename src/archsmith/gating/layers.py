"""archsmith.gating.layers (work in progress)."""
