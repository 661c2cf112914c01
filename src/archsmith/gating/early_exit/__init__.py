"""archsmith.gating.early_exit (work in progress)."""
