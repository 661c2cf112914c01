"""archsmith.reversible.unet3d (work in progress)."""
