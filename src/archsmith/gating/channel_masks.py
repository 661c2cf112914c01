"""Input-dependent channel masks (work in progress)."""
