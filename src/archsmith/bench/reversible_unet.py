"""U-Net budget table of archsmith bench reversible (work in progress)."""
