"""Seed lists: ``"0-3,7"`` → ``[0, 1, 2, 3, 7]``, 32-bit as in NVIDIA's tools."""

from __future__ import annotations

from micromotion.errors import ParameterError

_MAX_SEEDS = 100_000
#: Seeds are 32-bit, as in NVIDIA's tools.
MAX_SEED = 2**32 - 1


def parse_seeds(text: str) -> list[int]:
    """Parse a seed list such as ``"0-3,7"`` into ``[0, 1, 2, 3, 7]`` (order kept, no repeats).

    Raises:
        ParameterError: On malformed ranges, negative seeds, or absurdly long lists.
    """
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ParameterError("seeds", f"{text!r}: empty item")
        lo_s, sep, hi_s = part.partition("-")
        try:
            lo = int(lo_s)
            hi = int(hi_s) if sep else lo
        except ValueError:
            raise ParameterError(
                "seeds", f"{text!r}: {part!r} is not a seed or a range like 0-3"
            ) from None
        if lo < 0 or hi < lo:
            raise ParameterError("seeds", f"{text!r}: bad range {part!r}")
        if hi > MAX_SEED:
            raise ParameterError("seeds", f"{text!r}: seeds go up to {MAX_SEED}")
        if hi - lo + 1 + len(seeds) > _MAX_SEEDS:
            raise ParameterError("seeds", f"{text!r}: more than {_MAX_SEEDS} seeds")
        seeds.extend(range(lo, hi + 1))
    return list(dict.fromkeys(seeds))
