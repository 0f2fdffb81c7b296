"""Kernel headers the model needs (``include/linux/`` in the kernel tree): GFP flags in :mod:`.gfp`."""
