"""archsmith.tensornet.layers (work in progress)."""
