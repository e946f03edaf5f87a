"""``python -m engine.cli``: the ``ptycho`` command without the installed entry point."""

import sys

from . import main

sys.exit(main())
