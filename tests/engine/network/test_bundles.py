"""Model bundles: safetensors + JSON, digests verified, tampering refused."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from engine.errors import InputError
from engine.network.bundles import load_bundle, save_bundle

META = dict(intensity_scale=9.882118, probe_factor=1.5, N=8, gridsize=2)


@pytest.fixture
def bundle_dir(tmp_path):
    w = {"conv.weight": torch.arange(12.0).reshape(3, 4), "conv.bias": torch.ones(3)}
    probe = (np.arange(64).reshape(8, 8) * (1 + 0.5j)).astype(np.complex64)
    return save_bundle(tmp_path / "bundle", w, probe, dict(META)), w, probe


def test_round_trip(bundle_dir):
    path, w, probe = bundle_dir
    b = load_bundle(path)
    assert b.intensity_scale == 9.882118 and b.N == 8 and b.gridsize == 2
    np.testing.assert_array_equal(b.probe, probe)
    for k, v in w.items():
        assert torch.equal(b.weights[k], v)
    meta = json.loads((path / "bundle.json").read_text())
    assert set(meta["files"]) == {"weights.safetensors", "probe.safetensors"}
    assert "torch" in meta["versions"]
    assert not any(p.suffix in (".pt", ".pkl", ".pth") for p in path.iterdir())


def test_zip_round_trip(tmp_path, bundle_dir):
    _, w, probe = bundle_dir
    z = save_bundle(tmp_path / "b.zip", w, probe, dict(META), as_zip=True)
    assert zipfile.is_zipfile(z)
    assert load_bundle(z).intensity_scale == 9.882118


def test_run_directory_resolves_to_its_bundle(bundle_dir):
    path, _, _ = bundle_dir
    assert load_bundle(path.parent).path == path


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "edit_json"])
def test_tampered_or_truncated_bundles_are_refused(bundle_dir, damage):
    path, _, _ = bundle_dir
    w = path / "weights.safetensors"
    if damage == "flip":
        data = bytearray(w.read_bytes())
        data[-1] ^= 1
        w.write_bytes(bytes(data))
    elif damage == "truncate":
        w.write_bytes(w.read_bytes()[:-7])
    elif damage == "delete":
        w.unlink()
    else:
        meta = json.loads((path / "bundle.json").read_text())
        meta["intensity_scale"] = 98821.18  # the seed project's 10^4 bug, by hand
        (path / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(InputError) as err:
        load_bundle(path)
    assert "\n" not in str(err.value)


def test_missing_metadata_and_missing_bundle(tmp_path):
    with pytest.raises(InputError, match="intensity_scale"):
        save_bundle(tmp_path / "b", {}, np.ones((2, 2), np.complex64), {"N": 2, "gridsize": 1})
    with pytest.raises(InputError, match="bundle"):
        load_bundle(tmp_path / "nothing")
