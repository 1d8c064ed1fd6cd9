"""Bounded numbers: a station's number is checked for size before any ``Decimal`` or ``int``.

A JSON number of thousands of digits, or an exponent like ``1E+999990``, is valid JSON but
makes ``Decimal`` arithmetic and ``int`` conversion take seconds. Every number a station sends
(meter values, OCMF register values) passes ``bounded_decimal`` first; registers must also fit
in 64-bit Wh (``MAX_WH``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MAX_DIGITS = 40  # significant characters of a number's text (digits, sign, point, exponent)
MAX_EXPONENT = 30  # |exponent| of a number in scientific notation
MAX_WH = 2**63 - 1  # a register (Wh) must fit in a signed 64-bit integer


class NumberOutOfBounds(ValueError):
    """A number of more than ``MAX_DIGITS`` characters or an exponent past ``MAX_EXPONENT``."""


def bounded_decimal(text: str) -> Decimal:
    """``Decimal(text)`` for a text of at most ``MAX_DIGITS`` characters and a small exponent."""
    text = text.strip()
    if len(text) > MAX_DIGITS:
        raise NumberOutOfBounds(f"number has more than {MAX_DIGITS} characters")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if value.is_finite() and value != 0 and abs(value.adjusted()) > MAX_EXPONENT:
        raise NumberOutOfBounds(f"number exponent is beyond ±{MAX_EXPONENT}")
    return value


def bounded_int(text: str) -> int:
    """A JSON integer of at most ``MAX_DIGITS`` characters (``json.loads(parse_int=...)``)."""
    if len(text) > MAX_DIGITS:
        raise NumberOutOfBounds(f"number has more than {MAX_DIGITS} characters")
    return int(text)


def within_wh(value: int) -> bool:
    """A register reading (Wh) within the signed 64-bit range."""
    return -MAX_WH - 1 <= value <= MAX_WH
