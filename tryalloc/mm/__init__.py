"""Memory management: the page allocator, memcg charging and page_owner (``mm/`` in the kernel tree)."""
