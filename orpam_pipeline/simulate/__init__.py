"""Synthetic bidirectional OR-PAM sequences with known ground truth (scene, true even lines, displacement)."""

from orpam_pipeline.simulate.sequence import (
    DISPLACEMENT_CONVENTION,
    FIELD_CONVENTION,
    Simulation,
    SimulationParams,
    SimulationPaths,
    displacement_field,
    jitter_offsets,
    simulate,
    simulate_blocks,
    trajectories,
    write_simulation,
)
from orpam_pipeline.simulate.vasculature import Scene, SceneParams, render_scene

__all__ = [
    "DISPLACEMENT_CONVENTION",
    "FIELD_CONVENTION",
    "Scene",
    "SceneParams",
    "Simulation",
    "SimulationParams",
    "SimulationPaths",
    "displacement_field",
    "jitter_offsets",
    "render_scene",
    "simulate",
    "simulate_blocks",
    "trajectories",
    "write_simulation",
]
