"""Units (metadata `units: {column: unit}`): a filter value with a unit, `?distance__lt=75km`,
is converted to the column's unit, as Datasette 0.65 does with Pint.

Pint is imported only when such a value arrives (importing it and building its registry takes
a good part of a second, which no cold start should pay for a table without units).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from lambdasette.errors import ApiError

_NUMBER = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*\Z")
_lock = threading.Lock()
_registries: dict[tuple[str, ...], Any] = {}


def registry(custom_units: tuple[str, ...] = ()) -> Any:
    """Pint's unit registry with the metadata's `custom_units` defined, made once."""
    with _lock:
        found = _registries.get(custom_units)
        if found is None:
            import pint

            found = pint.UnitRegistry()
            for definition in custom_units:
                found.define(definition)
            _registries[custom_units] = found
        return found


def convert(value: str, unit: str, custom_units: tuple[str, ...] = ()) -> str:
    """`value` in the column's `unit`: a bare number is already in it; `75km` on a column in
    metres is `75000.0`. Text Pint cannot read as a quantity is left as it is; a quantity of
    another dimension (`5kg` on a length) is a 400."""
    if _NUMBER.match(value):
        return value
    ureg = registry(custom_units)
    import pint

    try:
        quantity = ureg(value)
    except (pint.errors.PintError, ValueError, TypeError, AttributeError, SyntaxError):
        return value
    if not isinstance(quantity, ureg.Quantity):
        return value
    try:
        return repr(float(quantity.to(ureg(unit)).magnitude))
    except pint.errors.DimensionalityError:
        raise ApiError(400, f"Cannot convert {value} to {unit}") from None
    except (pint.errors.PintError, ValueError, TypeError):
        raise ApiError(400, f"Invalid unit for this column: {unit}") from None
