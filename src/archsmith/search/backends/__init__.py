"""Where a search's workers run: local processes (in :mod:`archsmith.search.runner`) or a Ray
cluster (:mod:`archsmith.search.backends.ray_backend`)."""
