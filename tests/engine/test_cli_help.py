"""The command line can be learnt from ``--help``: every option explained with its default,
plain choices, ``--version``, the bench suites listed, one-line argument errors, and help that
does not load torch, scipy or matplotlib (so it answers at once)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import COMMANDS, SUMMARIES, build_parser, main

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "scipy", "matplotlib")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_help_imports_no_heavy_module():
    # each command's --help in one fresh interpreter; after each, what has been imported
    code = f"""
import contextlib, io, sys
from engine.cli import main
for argv in [[]] + [[c] for c in {list(COMMANDS)!r}]:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv + ["--help"])
        except SystemExit as exc:
            assert exc.code == 0, (argv, exc.code)
    loaded = [m for m in {HEAVY!r} if m in sys.modules]
    print(" ".join(argv) or "ptycho", ":", ",".join(loaded) or "-")
"""
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == len(COMMANDS) + 1
    heavy = [line for line in lines if not line.endswith(": -")]
    assert not heavy, f"--help imported heavy modules: {heavy}"


def test_argument_errors_do_not_import_torch():
    proc = _python("""
import sys
from engine.cli import main
try:
    main(["train", "data.npz", "--lr-schedule", "wavy", "--out", "x"])
except SystemExit as exc:
    print(exc.code, "torch" in sys.modules)
""")
    assert proc.stdout.split() == ["2", "False"], proc.stdout + proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, err
    assert "--lr-schedule" in err[0] and "'ptycho train --help'" in err[0]


@pytest.mark.parametrize("argv,needle", [
    (["train", "data.npz"], "--out"),                       # a required option missing
    (["stitch", "d.npz", "--out", "c.npz", "--window", "hann"], "--window"),  # a bad choice
    (["simulate", "--out", "d.npz", "--N", "zero"], "--N"),  # a bad type
    (["nonsense"], "COMMAND"),                               # an unknown command
])
def test_argument_error_is_one_line_with_a_pointer_to_help(capsys, argv, needle):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert needle in err[0] and "--help'" in err[0] and ": error: " in err[0]


def test_every_option_has_help_and_shows_its_default():
    missing, hidden = [], []
    for name, parser in _subparsers().items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            what = f"{name} {'/'.join(action.option_strings) or action.dest}"
            if not action.help:
                missing.append(what)
                continue
            shown = formatter._get_help_string(action)
            if (action.option_strings and not action.required
                    and action.default not in (None, False) and "default" not in shown):
                hidden.append(what)
    assert not missing, f"options without help: {missing}"
    assert not hidden, f"defaults not shown: {hidden}"


def test_help_shows_defaults_and_plain_choices(capsys):
    with pytest.raises(SystemExit):
        main(["stitch", "--help"])
    out = capsys.readouterr().out
    assert "(default: 1024)" in out          # --batch-size
    assert "come from: truth" in out and "('" not in out   # no Python tuple
    assert "--window uniform|probe" in out


def test_version(capsys):
    from engine import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"ptycho {__version__}"


def test_bench_help_lists_the_suites(capsys):
    from engine.bench import SUITES

    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for suite in SUITES:
        assert f"\n  {suite} " in out, suite


def test_summaries_cover_the_commands_and_match_their_parsers():
    # ``ptycho --help`` lists SUMMARIES without importing the commands: none may be missing
    assert set(SUMMARIES) == set(COMMANDS)
    assert set(_subparsers()) == set(COMMANDS)


def test_console_script_answers_help():
    # the installed entry point, as a user runs it
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "--help"], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0
    for name in COMMANDS:
        assert name in proc.stdout


def test_bench_suite_options_have_help():
    from engine.bench import SUITES
    from engine.cli.bench_cmd import suite_parser

    missing = [f"{name} {'/'.join(a.option_strings)}"
               for name in SUITES for a in suite_parser(name)._actions
               if not isinstance(a, argparse._HelpAction) and not a.help]
    assert not missing, f"bench suite options without help: {missing}"
