"""Body checks: does a response body hold what its kind promises?

Generic HTTP knowledge only (sizes, magic bytes, completeness, HTML pages
that stand in for data); what a particular service's error answers look like
belongs to that service's module, which passes an `AnswerCheck` of its own.
"""

from __future__ import annotations

import re

from skytfds.services.errors import AttemptFailed
from skytfds.services.errors import one_line

KINDS = ('bz2', 'jpeg', 'text', 'csv', 'json')
MAX_BODY_BYTES = 64 * 2**20  # 64 MiB: an SDSS frame is about 3 MB.

_BZ2_EOS_MAGIC = 0x177245385090  # bzip2 end-of-stream marker (sqrt(pi)), bit-aligned.
_EXCERPT_CHARS = 160


def check_kind(kind: str) -> str:
  """`kind` if it is one of KINDS; ValueError otherwise."""
  if kind not in KINDS:
    raise ValueError(f'kind {kind!r}: expected one of {", ".join(KINDS)}')
  return kind


def bz2_is_complete(data: bytes) -> bool:
  """True when `data` ends with a bzip2 end-of-stream marker (not truncated).

  The 48-bit marker is followed by a 32-bit CRC and 0-7 padding bits, so it
  sits at one of eight bit offsets within the last 11 bytes. Cheap: no
  decompression.
  """
  if len(data) < 14:
    return False
  tail = int.from_bytes(data[-11:], 'big')
  mask = (1 << 48) - 1
  return any(((tail >> (32 + pad)) & mask) == _BZ2_EOS_MAGIC for pad in range(8))


def looks_like_html(data: bytes, content_type: str = '') -> bool:
  """True for an HTML page, by its Content-Type or its first bytes."""
  ctype = content_type.split(';')[0].strip().lower()
  if ctype in ('text/html', 'application/xhtml+xml'):
    return True
  head = data[:512].lstrip().lower()
  return head.startswith((b'<!doctype', b'<html', b'<head', b'<body', b'<?xml',
                          b'<title', b'<h1', b'<p>', b'<pre'))


def excerpt(data: bytes, limit: int = _EXCERPT_CHARS) -> str:
  """A short single-line excerpt of a body, with HTML tags removed."""
  text = data[:4096].decode('utf-8', 'replace')
  text = one_line(re.sub(r'<[^>]*>', ' ', text))
  if len(text) > limit:
    text = text[:limit - 3] + '...'
  return text


def validate_body(data: bytes, kind: str, *, content_type: str = '',
                  max_bytes: int = MAX_BODY_BYTES) -> None:
  """Checks a body against what `kind` promises.

  Args:
    data: the body.
    kind: one of KINDS.
    content_type: the Content-Type header, if any ('' when unknown).
    max_bytes: size cap.

  Raises:
    AttemptFailed: with a reason word ('empty', 'too_large', 'html',
      'bad_magic', 'truncated', 'wrong_type').
  """
  check_kind(kind)
  if not data:
    raise AttemptFailed('empty', 'empty body')
  if len(data) > max_bytes:
    raise AttemptFailed('too_large', f'body of {len(data)} bytes exceeds the '
                        f'{max_bytes}-byte cap', retryable=False)
  if looks_like_html(data, content_type):
    # A proxy's or a maintenance page stands in for the data: transient.
    raise AttemptFailed('html', f'an HTML page came back instead of {kind} '
                        f'data: "{excerpt(data)}"')
  ctype = content_type.split(';')[0].strip().lower()
  if kind == 'bz2':
    _check_bz2(data, ctype)
  elif kind == 'jpeg':
    _check_jpeg(data, ctype)


def _check_bz2(data: bytes, ctype: str) -> None:
  if not re.match(rb'BZh[1-9]', data[:4]):
    raise AttemptFailed('bad_magic', f'not bzip2 data (starts with {data[:4]!r}, '
                        "expected b'BZh1'..b'BZh9')")
  if not bz2_is_complete(data):
    raise AttemptFailed('truncated', f'bzip2 stream of {len(data)} bytes has no '
                        'end-of-stream marker (truncated)')
  if ctype.startswith(('text/', 'image/')):
    raise AttemptFailed('wrong_type', f'Content-Type {ctype!r} for bzip2 data')


def _check_jpeg(data: bytes, ctype: str) -> None:
  if data[:8] == b'\x89PNG\r\n\x1a\n':
    raise AttemptFailed('wrong_type', 'a PNG image came back where a JPEG was '
                        'expected')
  if data[:2] != b'\xff\xd8':
    raise AttemptFailed('bad_magic', f'not a JPEG (starts with {data[:4]!r}, '
                        "expected b'\\xff\\xd8')")
  if not data.rstrip(b'\x00\r\n\t ').endswith(b'\xff\xd9'):
    raise AttemptFailed('truncated', f'JPEG of {len(data)} bytes has no end '
                        'marker FFD9 (truncated)')
  if ctype and not (ctype.startswith('image/jpeg') or ctype.startswith('image/jpg')
                    or ctype in ('application/octet-stream', 'binary/octet-stream')):
    raise AttemptFailed('wrong_type', f'Content-Type {ctype!r} for JPEG data')


class AnswerCheck:
  """How a service's answers read; this default knows only generic HTTP.

  A service whose error answers have a form of their own (SkyServer's SQL
  errors) passes a subclass to `Fetcher.fetch`.
  """

  def body(self, data: bytes, kind: str, *, content_type: str,
           max_bytes: int) -> None:
    """Checks a 200 body; raises AttemptFailed when it is not the data."""
    validate_body(data, kind, content_type=content_type, max_bytes=max_bytes)

  def error(self, status: int, body: bytes) -> AttemptFailed | None:
    """The failure a non-200 answer means, or None for the generic reading."""
    del status, body  # Generic HTTP reads the status alone.
    return None


GENERIC = AnswerCheck()
