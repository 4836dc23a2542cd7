"""Choosing torch's intra-op thread count deliberately, for one block of work."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(count)``, restoring the setting after.

    Small batched linear algebra (SVDs and eigensolvers of a few hundred rows) is faster on
    one thread than on two that spin against each other, dramatically so when another
    process keeps a core busy; callers that know this pin the count for their loop.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
