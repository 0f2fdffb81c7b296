"""Shared helpers for the tests."""
import pytest

from tryalloc import Kernel


@pytest.fixture
def kernel():
    """A two-CPU !RT SMP machine with every detector raising."""
    return Kernel(nr_cpus=2)
