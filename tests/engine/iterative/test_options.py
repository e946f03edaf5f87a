"""Options: validation with one-line errors, JSON round trip, data-support limits."""

from __future__ import annotations

import json
import re

import pytest

from engine.errors import InputError
from engine.iterative import (
    EPIEOptions,
    LSQMLOptions,
    RPIEOptions,
    options_for,
    options_from_dict,
    reconstruct,
)


@pytest.mark.parametrize("make, name", [
    (lambda: EPIEOptions(alpha=-0.5), "alpha"),
    (lambda: EPIEOptions(beta=0.0), "beta"),
    (lambda: RPIEOptions(alpha=1.5), "alpha"),
    (lambda: LSQMLOptions(batch_size=0), "batch_size"),
    (lambda: LSQMLOptions(iterations=0), "iterations"),
    (lambda: LSQMLOptions(noise="laplace"), "noise"),
    (lambda: LSQMLOptions(step_directions="sideways"), "step_directions"),
    (lambda: LSQMLOptions(probe_modes=0), "probe_modes"),
    (lambda: EPIEOptions(batch_order="zigzag"), "batch_order"),
    (lambda: EPIEOptions(batch_normalisation="max"), "batch_normalisation"),
    (lambda: EPIEOptions(update_object=False, update_probe=False), "update_object"),
    (lambda: options_for("dm"), "method"),
    (lambda: options_for("epie", noise="poisson"), "epie options"),
])
def test_bad_options_give_one_line_errors(make, name):
    with pytest.raises(InputError) as info:
        make()
    message = str(info.value)
    assert message.startswith(name) and "expected" in message
    assert "\n" not in message


@pytest.mark.parametrize("options", [
    EPIEOptions(iterations=7, batch_size=1, alpha=0.7, beta=0.3, update_probe=True,
                batch_normalisation="peak"),
    RPIEOptions(alpha=0.2, probe_modes=3, batch_order="sequential"),
    LSQMLOptions(noise="poisson", step_relaxation=0.5, seed=11, step_directions="global"),
])
def test_options_round_trip_through_json(options):
    data = json.loads(json.dumps(options.to_dict()))
    assert data["method"] == options.method
    assert options_from_dict(data) == options


def test_more_probe_modes_than_the_data_support_is_refused(small32):
    few = small32.subset([0, 1])
    with pytest.raises(InputError, match="probe_modes"):
        reconstruct(few, LSQMLOptions(iterations=1, probe_modes=3, update_probe=True))
    with pytest.raises(InputError, match="probe_modes"):
        reconstruct(small32, LSQMLOptions(iterations=1, probe_modes=40))


def test_batch_larger_than_the_data_is_the_whole_data(small32):
    whole = reconstruct(small32, EPIEOptions(iterations=2, batch_size=10_000))
    exact = reconstruct(small32, EPIEOptions(iterations=2, batch_size=small32.n))
    assert (whole.object == exact.object).all()


def test_too_few_positions_are_named_not_blamed_on_probe_modes(small32):
    """One position cannot constrain the object at all: the message says so (it used to
    read "expected at most 1 modes ..., got 1")."""
    with pytest.raises(InputError, match=r"^data: .*1 position\(s\)") as info:
        reconstruct(small32.subset([0]), EPIEOptions(iterations=1))
    assert "modes" not in str(info.value)
    with pytest.raises(InputError, match="^update_probe: .*2 position"):
        reconstruct(small32.subset([0, 1]), EPIEOptions(iterations=1, update_probe=True))
    few = small32.subset(list(range(6)))
    with pytest.raises(InputError, match=r"^probe_modes: expected at most (\d+) ") as info:
        reconstruct(few, EPIEOptions(iterations=1, probe_modes=6, update_probe=True))
    most = int(re.search(r"at most (\d+) ", str(info.value)).group(1))
    assert 1 <= most < 6
    # the largest number of modes the message allows is accepted
    reconstruct(few, EPIEOptions(iterations=1, probe_modes=most, update_probe=True))
