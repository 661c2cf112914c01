"""archsmith.reversible.irevnet (work in progress)."""
