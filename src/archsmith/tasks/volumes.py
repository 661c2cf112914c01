"""Synthetic 3D volume tasks (work in progress)."""
