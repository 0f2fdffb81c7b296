"""Small machines for tests: one zone of a few pages, memcg off, no watermarks (every page usable).
``small_options`` and ``no_watermarks`` are the same machine for ``explore(setup, boot=...)``."""
from tryalloc.mm.scenarios import no_watermarks, small_machine, small_options

__all__ = ["no_watermarks", "small_machine", "small_options"]
