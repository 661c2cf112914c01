"""archsmith.gating.models (work in progress)."""
