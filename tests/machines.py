"""Small machines for tests: one zone of a few pages, memcg off, no watermarks (every page usable)."""
from tryalloc.mm.scenarios import small_machine

__all__ = ["small_machine"]
