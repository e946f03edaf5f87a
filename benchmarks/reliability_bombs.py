"""Peak memory of refusing memory bombs (issue 21, item 7): each case in a fresh process.

``python benchmarks/reliability_bombs.py benchmarks/results/reliability-bombs-cpu.json``
from the repository root: a 1 MB bundle ``.zip`` holding a 1 GiB deflated member (its
digests recomputed) and an NPZ whose ``.npy`` header declares 146 TiB; the peak RSS a
fresh process adds while the loader refuses each (imports done before the baseline).
"""

import hashlib
import io
import json
import pathlib
import subprocess
import sys
import tempfile
import zipfile

CASE = r'''
import resource, sys, io, json, zipfile
sys.path.insert(0, ".")
import numpy as np, torch
from engine.errors import InputError
from engine import api  # noqa: imports done before the baseline
from engine.network.bundles import load_bundle
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kind, path = sys.argv[1], sys.argv[2]
try:
    if kind == "bundle":
        load_bundle(path)
    else:
        api.load_dataset(path)
    msg = "accepted"
except InputError as e:
    msg = str(e)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"baseline_rss_kib": base, "peak_rss_kib": peak, "result": msg}))
'''

def main(out):
    d = pathlib.Path(tempfile.mkdtemp())
    sys.path.insert(0, ".")
    import numpy as np
    import torch

    from engine.network.bundles import _manifest_digest, save_bundle

    save_bundle(d / "b", {"w": torch.ones(16)}, np.ones((32, 32), np.complex64),
                dict(intensity_scale=2.0, probe_factor=1.0, N=32, gridsize=1))
    meta = json.loads((d / "b" / "bundle.json").read_text())
    size = 1 << 30
    h = hashlib.sha256()
    chunk = b"\0" * (1 << 20)
    for _ in range(size >> 20):
        h.update(chunk)
    meta["files"]["weights.safetensors"] = {"sha256": h.hexdigest(), "size": size}
    meta["manifest_sha256"] = _manifest_digest(meta)
    with zipfile.ZipFile(d / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("bundle.json", json.dumps(meta))
        with z.open("weights.safetensors", "w", force_zip64=True) as fh:
            for _ in range(size >> 20):
                fh.write(chunk)
        z.write(d / "b" / "probe.safetensors", "probe.safetensors")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10**7, 2000, 2000)})
    with zipfile.ZipFile(d / "bomb.npz", "w") as z:
        z.writestr("diffraction.npy", header.getvalue() + b"\0" * 64)
    rows = []
    for kind, path, what in (("bundle", d / "bomb.zip", "bundle .zip with a 1 GiB deflated member"),
                             ("npz", d / "bomb.npz", "NPZ whose .npy header declares 146 TiB")):
        r = subprocess.run([sys.executable, "-c", CASE, kind, str(path)], capture_output=True,
                           text=True, check=True)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        res.update(case=what, file_bytes=path.stat().st_size,
                   extra_peak_mib=round((res["peak_rss_kib"] - res["baseline_rss_kib"]) / 1024, 1))
        rows.append(res)
        print(res)
    pathlib.Path(out).write_text(json.dumps({
        "date": "2026-12-07", "machine": "2-core CPU, shared with other jobs (loaded)",
        "what": "peak RSS added while the loader refuses the file (fresh process, after imports)",
        "rows": rows}, indent=2) + "\n")

if __name__ == "__main__":
    main(sys.argv[1])
