"""``python -m engine.cli``: the ``ptycho`` command without the installed entry point."""

import sys

from engine.cli import main

if __name__ == "__main__":  # importing the module (an import-contract sweep) runs nothing
    sys.exit(main())
