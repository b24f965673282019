"""Metrics of a worker on a registry the caller owns; no id ever becomes a label."""
