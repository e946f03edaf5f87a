"""The examples in engine.io's docstrings run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["units", "lazy", "placement", "streaming", "h5util", "cxi", "nexus", "mapping",
           "product", "detect", "readers", "inspect", "convert", "probe_start"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(f"engine.io.{name}")
    failures, tried = doctest.testmod(module, verbose=False)
    assert tried >= 1 and failures == 0
