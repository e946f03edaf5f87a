"""Simulated experiments: objects, probes, scan patterns and the measured patterns
(docs/conventions.md#forward-model)."""
