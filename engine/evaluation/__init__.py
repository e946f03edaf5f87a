"""Evaluation: metrics against a truth, registration, statistics comparison, reports and
run inventories."""
