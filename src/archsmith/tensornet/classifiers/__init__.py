"""archsmith.tensornet.classifiers (work in progress)."""
