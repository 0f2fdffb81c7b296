"""``python -m tryalloc.series``: see :func:`tryalloc.series.levels.main`."""
import sys

from .levels import main

if __name__ == "__main__":  # guarded: tools that walk the package import it
    sys.exit(main())
