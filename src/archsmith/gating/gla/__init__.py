"""archsmith.gating.gla (work in progress)."""
