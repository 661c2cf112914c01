"""archsmith.reversible.revcol (work in progress)."""
