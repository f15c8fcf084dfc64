"""Exports of trained 4D scenes: `ply_sequence` (one standard 3DGS PLY per time step, `fourreal export
ply-sequence`)."""
