"""Plain ASCII numbers in catalogue text: the one reading of numbers.

float() and int() alone also take '5_4.9' (digit separators) and any Unicode
digits ('５４', '٥٤'): none of that is a number in a catalogue file. Pure
functions, no I/O.
"""

from __future__ import annotations

import math
import re
import unicodedata

INT_RE = re.compile(r'[+-]?[0-9]+')
DECIMAL_RE = re.compile(
    r'[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?')
SPECIAL_RE = re.compile(r'[+-]?(?:nan|inf|infinity)', re.IGNORECASE)
MAX_DIGITS = 40  # Longer than any 64-bit id: out of range, never converted.


def parse_int(text: str) -> int | None:
  """An exact integer from ASCII decimal text (optional sign), or None."""
  if not INT_RE.fullmatch(text):
    return None
  digits = text.lstrip('+-').lstrip('0')
  if len(digits) > MAX_DIGITS:
    return -10**MAX_DIGITS if text[0] == '-' else 10**MAX_DIGITS
  return int(text)


def parse_float(text: str) -> float | None:
  """A float from ASCII decimal or scientific notation (or nan, inf), or None.

  `text` is stripped. On ASCII text without '_', float() accepts exactly
  DECIMAL_RE and SPECIAL_RE (it is the fast path of this check).
  """
  if not text.isascii() or '_' in text:
    return None
  try:
    return float(text)
  except ValueError:
    return None


def looks_float(text: str) -> bool:
  """Finite decimal text with a point or an exponent (an id through a float)."""
  return (DECIMAL_RE.fullmatch(text) is not None and
          INT_RE.fullmatch(text) is None and math.isfinite(float(text)))


def syntax_hint(text: str) -> str:
  """Why text is not a plain number, in parentheses; '' if nothing specific."""
  odd = next((c for c in text if not c.isascii()), None)
  if odd is not None:
    name = unicodedata.name(odd, f'U+{ord(odd):04X}')
    return (f' (it holds {odd!r}, {name}: write numbers in the ASCII digits '
            '0-9, with an optional sign, point and exponent)')
  if '_' in text and DECIMAL_RE.fullmatch(text.replace('_', '')):
    return " ('_' is not allowed between digits: write the digits alone)"
  if text.count(',') == 1 and DECIMAL_RE.fullmatch(text.replace(',', '.')):
    return ' (a decimal comma: write a point instead)'
  return ''
