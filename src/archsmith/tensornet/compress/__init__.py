"""archsmith.tensornet.compress (work in progress)."""
