"""The kernel-source table behind the book's ``{kernel}`` role and the API reference's "Kernel:" lines."""
from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

from tryalloc.errors import InvalidArgumentError
from tryalloc.series import kernel_source as ks


def test_a_name_links_to_its_identifier_page_at_the_default_tag():
    assert ks.url("rmqueue_pcplist") == "https://elixir.bootlin.com/linux/v6.13/C/ident/rmqueue_pcplist"
    assert ks.title("rmqueue_pcplist") == "rmqueue_pcplist in mm/page_alloc.c at Linux v6.13"


def test_a_name_new_in_the_series_defaults_to_the_merged_tag_and_is_refused_at_the_baseline():
    assert ks.parse("free_pages_nolock") == ("free_pages_nolock", "v6.15", None)
    with pytest.raises(InvalidArgumentError, match="not defined at v6.13"):
        ks.url("free_pages_nolock@v6.13")


def test_a_file_and_line_link_to_the_source_at_the_tag():
    assert ks.url("mm/page_alloc.c@v6.15#L42") == "https://elixir.bootlin.com/linux/v6.15/source/mm/page_alloc.c#L42"


@pytest.mark.parametrize("bad", ["no_such_function", "rmqueue@v6.14", "mm/page_alloc.c#42", "rmqueue#L3",
                                 "not a/path"])
def test_unknown_names_tags_and_malformed_targets_are_refused_by_name(bad):
    with pytest.raises(InvalidArgumentError, match="kernel:"):
        ks.url(bad)


def test_every_entry_names_a_source_file_at_known_tags():
    for name, where in ks.DEFINED_IN.items():
        assert where and set(where) <= set(ks.VERSIONS), name
        assert all(re.fullmatch(r"(?:[\w.-]+/)+[\w.-]+\.[ch]", path) for path in where.values()), name


def test_the_model_functions_that_mirror_a_kernel_name_are_in_the_table():
    """Every public function of the mm, bpf and lib packages whose name the table knows is linked; and
    the table's central entries are functions the model really defines."""
    defined = set()
    for pkg in ("mm", "bpf", "lib", "kernel", "include"):
        mod = importlib.import_module(f"tryalloc.{pkg}")
        for info in pkgutil.walk_packages(mod.__path__, f"tryalloc.{pkg}."):
            defined |= {n for n, v in vars(importlib.import_module(info.name)).items() if callable(v)}
    core = ["rmqueue_pcplist", "rmqueue_buddy", "free_one_page", "__rmqueue_smallest", "get_page_from_freelist",
            "__memcg_kmem_charge_page", "stack_depot_save_flags", "__set_page_owner", "bpf_map_alloc_pages"]
    assert set(core) <= defined & set(ks.DEFINED_IN)
