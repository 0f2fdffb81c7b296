"""BPF at the baseline (``kernel/bpf/`` in the kernel tree): programs on tracepoints and perf NMIs
(:mod:`.prog`), maps that allocate memcg-accounted pages (:mod:`.syscall`) and the arena map
(:mod:`.arena`)."""
