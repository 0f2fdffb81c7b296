"""Library code the allocator uses (``lib/`` in the kernel tree)."""
