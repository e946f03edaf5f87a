"""report.png: metrics as text, shared amplitude and phase scales, a non-cyclic phase map,
readable fonts and no empty panels."""

from __future__ import annotations

import numpy as np

from engine.evaluation.metrics import evaluate_canvas
from engine.evaluation.report import overview_figure, write_overview_png
from engine.physics.stitching import Canvas

from .helpers import canvas_of


def test_overview_shares_scales_shows_metrics_and_has_no_empty_panel(dataset, tmp_path):
    truth = dataset.object
    canvas = canvas_of(truth, dataset.positions, dataset.N)
    # a reconstruction at twice the amplitude and a phase offset: shown on the truth's scale
    recon = Canvas(canvas.canvas * np.complex64(2 * np.exp(0.3j)), canvas.coverage,
                   canvas.origin, canvas.weight)
    ev = evaluate_canvas(recon, truth)
    fig = overview_figure(dataset, canvas, "test", recon, ev)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 12
    for ax in panels:  # every panel holds an image or text
        assert ax.images or [t for t in ax.texts if t.get_text().strip()], ax.get_title()
        assert ax.title.get_fontsize() >= 10
    by_title = {ax.get_title(): ax for ax in panels}

    def clim(prefix):
        ax = next(a for t, a in by_title.items() if t.startswith(prefix))
        return ax.images[0].get_clim(), ax.images[0]

    amp = [clim(p)[0] for p in ("truth amplitude", "stitched truth amplitude",
                                "reconstruction amplitude")]
    assert amp[0] == amp[1] == amp[2]
    (lo, hi), img = clim("reconstruction amplitude")
    # scaled by the evaluation's 0.5: its values lie in the truth's range
    data = img.get_array()
    assert np.nanmax(data) <= hi * 1.001 and np.nanmin(data) >= lo * 0.999
    phases = [clim(p) for p in ("truth phase", "stitched truth phase",
                                "reconstruction phase")]
    assert phases[0][0] == phases[1][0] == phases[2][0]
    assert all(im.get_cmap().name not in ("twilight", "twilight_shifted", "hsv")
               for _, im in phases)
    text = " ".join(t.get_text() for ax in panels for t in ax.texts)
    assert "SSIM" in text and "phase RMS" in text and "0.5" in text
    path = write_overview_png(tmp_path / "report.png", dataset, canvas, recon=recon,
                              evaluation=ev)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
