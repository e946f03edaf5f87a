"""Training of the physics-informed network (Lightning Fabric loop, checkpoints, events)."""
