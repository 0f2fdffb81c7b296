"""A progress bar for long searches (tqdm): executions, their rate, and what the reduction skipped.

Off unless asked for (``explore(..., progress=True)``); ``tqdm.auto`` draws a widget in a notebook
and a text bar in a terminal.
"""
from __future__ import annotations


class Progress:
    """Counts executions into a tqdm bar; does nothing when ``enabled`` is false."""

    EVERY = 64  # executions between refreshes of the counters beside the bar (they cost a format)

    def __init__(self, enabled: bool, result, tree=None, total: int | None = None, unit: str = "exec"):
        self.result = result
        self.tree = tree
        self.bar = None
        self.seen = result.executions + result.pruned
        if enabled:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, initial=self.seen if total is None else 0, unit=unit,
                            desc="explore", dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        if self.bar is None:
            return
        self.bar.update(n)
        self.seen += n
        if self.seen % self.EVERY < n:
            self.refresh()

    def refresh(self) -> None:
        if self.bar is not None:
            r = self.result
            skipped = self.tree.skipped if self.tree is not None else r.skipped
            self.bar.set_postfix(failures=len(r.failures), skipped=skipped, pruned=r.pruned, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.refresh()
            self.bar.close()
