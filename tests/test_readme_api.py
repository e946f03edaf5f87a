"""The README's "Engine API" code runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


@pytest.mark.slow
def test_the_engine_api_section_runs(capsys):
    import torch

    blocks = re.findall(r"```python\n(.*?)```", _section(README.read_text(), "Engine API"),
                        flags=re.S)
    assert len(blocks) == 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a busy 2-core runner: one thread is faster and reproducible
    try:
        namespace: dict = {}
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == "True 2"
    assert printed[1].startswith("10 ")  # five iterations, then five more
    assert namespace["stats"].records[-1]["batch"] == "all"
    assert len(namespace["snapshots"]) >= 2 and namespace["snapshots"][-1].ndim == 2
