"""The operations every method shares: intensity scaling, grouping, stitching, patch statistics.

Dataset-level forms (``workflows``) and patch sources (``sources``) sit beside them.
"""
