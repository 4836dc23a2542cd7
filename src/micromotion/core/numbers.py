"""The one check for numbers at the library's boundary: finite, float32-sized, in range.

Every float a user gives (a strength, fps, truncation, learning rate, time) passes through
:func:`check_real`. NaN slips through ordinary range checks (every comparison with it is
false) and a value such as ``1e39`` is finite in Python but ``inf`` in the float32 tensors the
networks use, so both are refused here, with a message that names the parameter.
"""

from __future__ import annotations

import math

from micromotion.errors import ParameterError

#: The largest finite float32.
FLOAT32_MAX = 3.4028234663852886e38


def check_real(
    param: str,
    value: float,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """Return ``value`` as a float if it is finite, fits float32 and lies in range.

    Args:
        param: The parameter's name, for the message (``"fps"``).
        value: The number given.
        low: Smallest allowed value (``None``: no bound).
        high: Largest allowed value (``None``: no bound).
        low_open: ``low`` itself is not allowed.

    Raises:
        ParameterError: ``fps nan: must be a finite number`` and the like.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(param, f"{value!r}: must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise ParameterError(param, f"{value}: must be a finite number")
    if abs(number) > FLOAT32_MAX:
        raise ParameterError(param, f"{value}: too large for float32 (at most {FLOAT32_MAX:.4g})")
    below = low is not None and (number <= low if low_open else number < low)
    above = high is not None and number > high
    if below or above:
        if low is not None and high is not None:
            span = f"from {low:g} to {high:g}" if not low_open else f"in ({low:g}, {high:g}]"
        elif low is not None:
            span = f"> {low:g}" if low_open else f"≥ {low:g}"
        else:
            span = f"≤ {high:g}"
        raise ParameterError(param, f"{value}: must be {span}")
    return number
