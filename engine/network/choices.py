"""The network's option words, kept free of torch so that a command line or a form can list
them without loading the network (``ptycho train --help`` answers at once).

:mod:`engine.network.model`, :mod:`engine.network.losses` and
:mod:`engine.network.config` use these same types and tuples.
"""

from __future__ import annotations

from typing import Literal, get_args

SUPPORTED_N = (32, 64, 128, 256)

# a fixed first layer: far-field amplitudes span orders of magnitude (the zero-order peak
# against the speckle), which a compressive map hands to the convolutions evenly
InputTransform = Literal["none", "sqrt", "log1p"]
Upsample = Literal["nearest", "shuffle"]
Downsample = Literal["avg", "strided"]
INPUT_TRANSFORMS: tuple[str, ...] = get_args(InputTransform)
UPSAMPLES: tuple[str, ...] = get_args(Upsample)
DOWNSAMPLES: tuple[str, ...] = get_args(Downsample)

LossName = Literal["poisson", "mae", "supervised"]
LOSSES: tuple[str, ...] = get_args(LossName)
