"""``python -m recorder``: see ``python -m recorder --help``."""

from __future__ import annotations

import sys

from recorder._cli.main import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
