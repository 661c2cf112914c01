"""archsmith.gating.moe (work in progress)."""
