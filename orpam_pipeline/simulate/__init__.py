"""Synthetic bidirectional OR-PAM sequences with known ground truth (scene, true even lines, displacement)."""

from orpam_pipeline.simulate.sequence import (
    DISPLACEMENT_CONVENTION,
    Simulation,
    SimulationParams,
    SimulationPaths,
    displacement_field,
    simulate,
    simulate_blocks,
    trajectories,
    write_simulation,
)
from orpam_pipeline.simulate.vasculature import Scene, SceneParams, render_scene

__all__ = [
    "DISPLACEMENT_CONVENTION",
    "Scene",
    "SceneParams",
    "Simulation",
    "SimulationParams",
    "SimulationPaths",
    "displacement_field",
    "render_scene",
    "simulate",
    "simulate_blocks",
    "trajectories",
    "write_simulation",
]
