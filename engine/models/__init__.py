"""The physics-informed network: encoder–decoder CNN and its differentiable forward model."""

from .network import SUPPORTED_N, NetworkConfig, PtychoNet, flops_per_pattern, parameter_count
from .physics import PhysicsModel, group_extent, merge_reextract

__all__ = ["SUPPORTED_N", "NetworkConfig", "PhysicsModel", "PtychoNet", "flops_per_pattern",
           "group_extent", "merge_reextract", "parameter_count"]
