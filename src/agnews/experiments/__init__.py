"""Experiments: the notebook's presets (presets), comparing runs (compare), linear peers on the
same rows (peers) and the ladder of every preset (ladder/)."""
