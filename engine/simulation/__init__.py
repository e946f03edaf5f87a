"""Simulated experiments: objects, probes, scan patterns and the measured patterns (SPEC §3)."""
