"""archsmith.tensornet.core (work in progress)."""
