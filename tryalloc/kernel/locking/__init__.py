"""Locks: ``raw_spinlock_t``, ``spinlock_t``, ``local_lock_t``, the resilient ``rqspinlock_t``, and
lockdep-lite that watches the first three."""
from . import localtry_lock  # v7-v9's localtry_lock_t, for release 6.15-rc1 (empty before level 6.15)
from .local_lock import (
    local_lock,
    local_lock_irqsave,
    local_lock_t,
    local_trylock,  # @since 6.15
    local_trylock_init,  # @since 6.15
    local_trylock_irqsave,  # @since 3
    local_trylock_t,  # @since 3
    local_unlock,
    local_unlock_irqrestore,
)
from .rqspinlock import raw_res_spin_lock_irqsave, raw_res_spin_unlock_irqrestore, rqspinlock_t
from .spinlock import (
    raw_spin_lock,
    raw_spin_lock_irqsave,
    raw_spin_trylock,
    raw_spin_trylock_irqsave,
    raw_spin_unlock,
    raw_spin_unlock_irqrestore,
    raw_spinlock_t,
    spin_lock,
    spin_lock_irqsave,
    spin_trylock,
    spin_trylock_irqsave,
    spin_unlock,
    spin_unlock_irqrestore,
    spinlock_t,
)

__all__ = [
    "localtry_lock",
    "local_lock", "local_lock_irqsave", "local_lock_t", "local_unlock", "local_unlock_irqrestore",
    "local_trylock_irqsave", "local_trylock_t",  # @since 3
    "local_trylock", "local_trylock_init",  # @since 6.15
    "raw_spin_lock", "raw_spin_lock_irqsave", "raw_spin_trylock", "raw_spin_trylock_irqsave", "raw_spin_unlock",
    "raw_spin_unlock_irqrestore", "raw_spinlock_t", "spin_lock", "spin_lock_irqsave", "spin_trylock",
    "spin_trylock_irqsave", "spin_unlock", "spin_unlock_irqrestore", "spinlock_t",
    "raw_res_spin_lock_irqsave", "raw_res_spin_unlock_irqrestore", "rqspinlock_t",
]
