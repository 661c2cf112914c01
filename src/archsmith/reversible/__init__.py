"""Family 1: reversible and invertible networks (training memory flat in depth)."""
