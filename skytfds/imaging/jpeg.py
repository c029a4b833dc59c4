"""Strict JPEG structure check: the coded data holds exactly the image its header promises.

Pure: bytes in, `JpegInfo` or `JpegError` out; no I/O.

libjpeg (behind PIL and TensorFlow) decodes damaged JPEGs without an error:
it fills whatever the coded data lacks with zeros (flat grey blocks) and only
prints `Corrupt JPEG data: ...` on stderr. So a JPEG cut in half with its end
marker FFD9 put back, one whose middle bytes were zeroed, or a progressive JPEG
cut after its first scan all "decode". This module reads the marker structure
and Huffman-decodes every scan without dequantising or transforming anything,
and refuses the file unless

* each scan's entropy-coded data holds exactly the blocks that the frame
  header and the scan header call for: every Huffman code is in its table,
  no coefficient run goes past the end of a block or band, no data is read
  past the scan's end, and fewer than 8 bits (the byte padding) are left over;
* restart markers come in sequence and each interval holds its MCUs;
* every component is coded completely: in a sequential JPEG by one scan, in
  a progressive one by scans that bring all 64 coefficients down to the last
  bit of successive approximation.

Supported: 8-bit Huffman-coded baseline, extended sequential and progressive
JPEG (SOF0, SOF1, SOF2), what the SDSS and Pan-STARRS services serve.
Lossless, hierarchical and arithmetic-coded JPEGs are refused.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

_SOF_SUPPORTED = {0xC0: 'baseline', 0xC1: 'extended', 0xC2: 'progressive'}
_SOF_UNSUPPORTED = frozenset({0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                              0xCE, 0xCF, 0xCC})
_RST = range(0xD0, 0xD8)
_SOI, _EOI, _SOS, _DHT, _DRI = 0xD8, 0xD9, 0xDA, 0xC4, 0xDD
# Segments that do not change how the coded data reads: quantisation tables,
# application data (JFIF, EXIF, ICC...) and comments.
_SKIPPED = frozenset({0xDB, 0xFE, *range(0xE0, 0xF0)})
# Bytes allowed after the end marker (what servers and the body checks allow).
_TRAILING_PADDING = b'\x00\r\n\t '
_MAX_DC_CATEGORY = 11  # 8-bit samples.
_MAX_AC_CATEGORY = 10


class JpegError(ValueError):
  """The bytes are not a whole, consistently coded JPEG; the message says where."""


@dataclasses.dataclass(frozen=True)
class JpegInfo:
  """What a verified JPEG holds."""
  width: int
  height: int
  components: int
  coding: str          # 'baseline', 'extended' or 'progressive'
  scans: int


@dataclasses.dataclass
class _Component:
  ident: int
  h: int
  v: int
  blocks_wide: int = 0   # Non-interleaved block grid.
  blocks_high: int = 0
  nonzero: bytearray | None = None   # Progressive: coefficient history.


@dataclasses.dataclass
class _Frame:
  coding: str
  width: int
  height: int
  components: list[_Component]
  h_max: int
  v_max: int


@functools.lru_cache(maxsize=64)
def _lookup(counts: bytes, symbols: bytes) -> list[int]:
  """A 16-bit lookup table: window -> (code length << 8 | symbol), 0 if no code."""
  table = [0] * 65536
  code = k = 0
  for length in range(1, 17):
    for _ in range(counts[length - 1]):
      if code >= 1 << length:
        raise JpegError('Huffman table with more codes than its lengths allow')
      shift = 16 - length
      table[code << shift:(code + 1) << shift] = [
          length << 8 | symbols[k]] * (1 << shift)
      code += 1
      k += 1
    code <<= 1
  return table


def _windows(coded: bytes) -> memoryview:
  """For every bit position p of `coded`: the 16 bits starting at p."""
  b = np.frombuffer(coded + b'\x00\x00\x00', np.uint8).astype(np.uint32)
  v = (b[:-2] << 16) | (b[1:-1] << 8) | b[2:]
  shifts = np.arange(8, 0, -1, dtype=np.uint32)
  windows = ((v[:len(coded) + 1, None] >> shifts) & 0xFFFF).astype(np.uint16)
  return memoryview(windows.ravel())


def _u16(data: bytes, pos: int) -> int:
  return data[pos] << 8 | data[pos + 1]


def _segment(data: bytes, pos: int, name: str) -> tuple[bytes, int]:
  """(payload, end) of the length-prefixed segment whose length is at `pos`."""
  if pos + 2 > len(data):
    raise JpegError(f'{name} segment at byte {pos} is cut off')
  length = _u16(data, pos)
  if length < 2 or pos + length > len(data):
    raise JpegError(f'{name} segment at byte {pos} claims {length} bytes, '
                    f'{len(data) - pos} left')
  return data[pos + 2:pos + length], pos + length


def _read_frame(payload: bytes, marker: int) -> _Frame:
  if len(payload) < 6:
    raise JpegError('frame header too short')
  precision, height, width, count = (payload[0], _u16(payload, 1),
                                     _u16(payload, 3), payload[5])
  if precision != 8:
    raise JpegError(f'{precision}-bit samples; only 8-bit JPEGs are supported')
  if width == 0 or height == 0:
    raise JpegError(f'frame of {width}x{height} px (a height set later by a '
                    'DNL marker is not supported)')
  if not 1 <= count <= 4 or len(payload) != 6 + 3 * count:
    raise JpegError(f'frame header with {count} components and '
                    f'{len(payload)} bytes')
  components = []
  for n in range(count):
    ident, hv = payload[6 + 3 * n], payload[7 + 3 * n]
    h, v = hv >> 4, hv & 15
    if not (1 <= h <= 4 and 1 <= v <= 4):
      raise JpegError(f'component {ident} has sampling factors {h}x{v}')
    if any(c.ident == ident for c in components):
      raise JpegError(f'component id {ident} appears twice')
    components.append(_Component(ident, h, v))
  h_max, v_max = max(c.h for c in components), max(c.v for c in components)
  for c in components:
    c.blocks_wide = -(-(-(-width * c.h // h_max)) // 8)
    c.blocks_high = -(-(-(-height * c.v // v_max)) // 8)
  return _Frame(_SOF_SUPPORTED[marker], width, height, components, h_max, v_max)


def _read_tables(payload: bytes, tables: dict) -> None:
  pos = 0
  while pos < len(payload):
    if pos + 17 > len(payload):
      raise JpegError('Huffman table segment cut off')
    tc, th = payload[pos] >> 4, payload[pos] & 15
    if tc > 1 or th > 3:
      raise JpegError(f'Huffman table class {tc} id {th}')
    counts = payload[pos + 1:pos + 17]
    total = sum(counts)
    symbols = payload[pos + 17:pos + 17 + total]
    if total > 256 or len(symbols) != total:
      raise JpegError(f'Huffman table of {total} symbols is cut off')
    tables[tc, th] = _lookup(bytes(counts), bytes(symbols))
    pos += 17 + total


def _scan_extent(data: bytes, start: int) -> tuple[list[tuple[int, int, int]], int]:
  """Restart intervals [(first byte, end byte, RST number or -1)] and the end."""
  intervals = []
  begin = pos = start
  while True:
    j = data.find(b'\xff', pos)
    if j < 0 or j + 1 >= len(data):
      raise JpegError(f'coded data from byte {start} runs to the end of the '
                      'file without an end marker')
    k = j + 1
    while k < len(data) and data[k] == 0xFF:  # Fill bytes before a marker.
      k += 1
    if k >= len(data):
      raise JpegError('file ends inside a marker')
    marker = data[k]
    if marker == 0 and k == j + 1:  # A stuffed 0xFF data byte.
      pos = k + 1
      continue
    if marker == 0:
      raise JpegError(f'fill bytes followed by 0x00 at byte {k}')
    if marker in _RST:
      intervals.append((begin, j, marker - 0xD0))
      begin = pos = k + 1
      continue
    intervals.append((begin, j, -1))
    return intervals, j


class _Scan:
  """One scan's header, and the Huffman decoding of its coded data."""

  def __init__(self, payload: bytes, frame: _Frame, tables: dict,
               restart: int, index: int):
    if not payload or len(payload) != 4 + 2 * payload[0]:
      raise JpegError(f'scan {index}: header of {len(payload)} bytes')
    count = payload[0]
    self.index = index
    self.components, self.dc_tables, self.ac_tables = [], [], []
    by_id = {c.ident: c for c in frame.components}
    for n in range(count):
      ident, td_ta = payload[1 + 2 * n], payload[2 + 2 * n]
      if ident not in by_id or by_id[ident] in self.components:
        raise JpegError(f'scan {index}: component {ident} not in the frame '
                        'or given twice')
      self.components.append(by_id[ident])
      self.dc_tables.append(tables.get((0, td_ta >> 4)))
      self.ac_tables.append(tables.get((1, td_ta & 15)))
    self.ss, self.se = payload[1 + 2 * count], payload[2 + 2 * count]
    self.ah, self.al = payload[3 + 2 * count] >> 4, payload[3 + 2 * count] & 15
    self.frame, self.restart = frame, restart
    self._check_header()
    needs_dc = self.ss == 0 and self.ah == 0  # DC refinement reads raw bits.
    if (needs_dc and None in self.dc_tables or
        self.se > 0 and None in self.ac_tables):
      raise JpegError(f'scan {index}: uses an undefined Huffman table')

  def _check_header(self) -> None:
    where = f'scan {self.index}'
    if self.frame.coding != 'progressive':
      if (self.ss, self.se, self.ah, self.al) != (0, 63, 0, 0):
        raise JpegError(f'{where}: sequential scan with spectral selection '
                        f'{self.ss}..{self.se}, approximation {self.ah}/{self.al}')
      return
    if self.ss == 0 and self.se != 0 or self.se < self.ss or self.se > 63:
      raise JpegError(f'{where}: spectral selection {self.ss}..{self.se}')
    if self.ss > 0 and len(self.components) != 1:
      raise JpegError(f'{where}: AC scan of {len(self.components)} components')
    if self.al > 13 or (self.ah and self.ah != self.al + 1):
      raise JpegError(f'{where}: successive approximation {self.ah}/{self.al}')

  def decode(self, data: bytes, intervals: list[tuple[int, int, int]]) -> None:
    """Huffman-decodes every restart interval; JpegError on any inconsistency."""
    if len(self.components) == 1:  # Non-interleaved: an MCU is one block.
      c = self.components[0]
      total = c.blocks_wide * c.blocks_high
    else:
      f = self.frame
      total = -(-f.width // (8 * f.h_max)) * -(-f.height // (8 * f.v_max))
    per = self.restart or total
    expected = -(-total // per)
    if len(intervals) != expected:
      raise JpegError(f'scan {self.index}: {len(intervals)} restart intervals, '
                      f'expected {expected} ({total} MCUs, {per} per interval)')
    for n, (begin, end, rst) in enumerate(intervals):
      if n < expected - 1 and rst != n % 8:
        raise JpegError(f'scan {self.index}: restart marker RST{rst} where '
                        f'RST{n % 8} belongs')
      coded = data[begin:end].replace(b'\xff\x00', b'\xff')
      first = n * per
      self._interval(coded, first, min(first + per, total), begin)

  def _interval(self, coded: bytes, first: int, last: int, offset: int) -> None:
    bits = 8 * len(coded)
    w = _windows(coded)
    where = f'scan {self.index}, coded data at byte {offset}'
    try:
      if self.ss == 0:  # Sequential, or a progressive DC scan.
        pos, eobrun = self._mcus(w, bits, first, last), 0
      else:
        pos, eobrun = self._bands(w, bits, first, last)
    except IndexError:
      raise JpegError(f'{where}: the data ends before the last of its '
                      f'{last - first} MCUs (truncated or corrupt)') from None
    except _BadCode as e:
      raise JpegError(f'{where}: {e} (corrupt data)') from None
    if eobrun:
      raise JpegError(f'{where}: end-of-band run goes past the end of the scan')
    if bits - pos >= 8:
      raise JpegError(f'{where}: {(bits - pos) // 8} bytes of coded data left '
                      'after the last MCU (corrupt data)')

  def _mcus(self, w, bits: int, first: int, last: int) -> int:
    """Decodes MCUs first..last-1: DC, and in a sequential scan AC; -> pos."""
    sequential = self.frame.coding != 'progressive'
    # The (DC, AC) tables of each block of an MCU, in order.
    one = len(self.components) == 1  # Non-interleaved: an MCU is one block.
    pairs = zip(self.components, zip(self.dc_tables, self.ac_tables))
    blocks = [t for c, t in pairs for _ in range(1 if one else c.h * c.v)]
    if self.ah:  # Progressive DC refinement: one bit per block.
      pos = len(blocks) * (last - first)
      if pos > bits:
        raise IndexError
      return pos
    pos = 0
    for _ in range(first, last):
      for dc, ac in blocks:
        entry = dc[w[pos]]
        if not entry or entry & 0xFF > _MAX_DC_CATEGORY:
          raise _BadCode('invalid DC code')
        pos += (entry >> 8) + (entry & 0xFF)
        if sequential:
          pos = _first_ac(w, pos, ac)[0]
      if pos > bits:
        raise IndexError
    return pos

  def _bands(self, w, bits: int, first: int, last: int) -> tuple[int, int]:
    """Decodes blocks first..last-1 of a progressive AC scan; (pos, eobrun)."""
    table, ss, se = self.ac_tables[0], self.ss, self.se
    c = self.components[0]
    if c.nonzero is None:  # Which coefficients are nonzero so far.
      c.nonzero = bytearray(64 * c.blocks_wide * c.blocks_high)
    history = c.nonzero
    pos = eobrun = 0
    for block in range(first, last):
      if self.ah:
        pos, eobrun = _refine_ac(w, pos, eobrun, table, ss, se, history,
                                 block * 64)
      elif eobrun:
        eobrun -= 1
      else:
        pos, eobrun = _first_ac(w, pos, table, ss, se, history, block * 64)
      if pos > bits:
        raise IndexError
    return pos, eobrun


class _BadCode(Exception):
  """A code that no valid encoder writes; the message names it."""


def _first_ac(w, pos, table, ss=1, se=63, nonzero=None, base=0
              ) -> tuple[int, int]:
  """Coefficients ss..se of one block, first pass; (pos, end-of-band run left).

  Progressive when given `nonzero` (marks the coefficients coded nonzero at
  `base`); else sequential: the band 1..63, no end-of-band runs.
  """
  progressive = nonzero is not None
  k = ss
  while k <= se:
    entry = table[w[pos]]
    if not entry:
      raise _BadCode('invalid AC code')
    pos += entry >> 8
    r, s = entry >> 4 & 15, entry & 15
    if s:
      k += r
      if k > se or s > _MAX_AC_CATEGORY:
        raise _BadCode(f'AC symbol 0x{entry & 0xFF:02x} at coefficient {k}')
      if progressive:
        nonzero[base + k] = 1
      pos += s
      k += 1
    elif r == 15:
      k += 16
      if k > se:
        raise _BadCode(f'zero run past the end of a '
                       f'{"band" if progressive else "block"}')
    elif not r:
      return pos, 0
    elif progressive:
      pos, run = _eob_run(w, pos, r)
      return pos, run - 1
    else:
      raise _BadCode(f'AC symbol 0x{entry & 0xFF:02x}')
  return pos, 0


def _eob_run(w, pos: int, r: int) -> tuple[int, int]:
  """(pos, run) of an EOBr symbol: 2**r blocks plus r bits after its code."""
  return (pos + r, (1 << r) + (w[pos] >> (16 - r))) if r else (pos, 1)


def _refine_ac(w, pos, eobrun, table, ss, se, nonzero, base
               ) -> tuple[int, int]:
  """libjpeg's decode_mcu_AC_refine, reading bits only; (pos, eobrun)."""
  k = ss
  if not eobrun:
    while k <= se:
      entry = table[w[pos]]
      if not entry:
        raise _BadCode('invalid AC code')
      pos += entry >> 8
      rs = entry & 0xFF
      r, s = rs >> 4, rs & 15
      if s:
        if s != 1:
          raise _BadCode(f'refinement symbol 0x{rs:02x}')
        pos += 1  # Sign of the new coefficient.
      elif r != 15:
        pos, eobrun = _eob_run(w, pos, r)
        break
      while k <= se:  # Correction bits of nonzero coefficients; r zeros.
        if nonzero[base + k]:
          pos += 1
        else:
          r -= 1
          if r < 0:
            break
        k += 1
      if s:
        if k > se:
          raise _BadCode('refined coefficient past the end of a band')
        nonzero[base + k] = 1
      k += 1
  if eobrun:  # A correction bit for each nonzero coefficient left.
    pos += sum(nonzero[base + k:base + se + 1])
    eobrun -= 1
  return pos, eobrun


def _coverage(frame: _Frame, scans: list[_Scan]) -> None:
  """Every component fully coded (all coefficients, every approximation bit)."""
  if frame.coding != 'progressive':
    coded = [c for s in scans for c in s.components]
    for c in frame.components:
      n = sum(x is c for x in coded)
      if n != 1:
        raise JpegError(f'component {c.ident} is coded by {n} scans, expected 1')
    return
  bits = {c.ident: [-1] * 64 for c in frame.components}
  for scan in scans:
    for c in scan.components:
      have = bits[c.ident]
      for k in range(scan.ss, scan.se + 1):
        wanted = -1 if scan.ah == 0 else scan.ah
        if have[k] != wanted or (k > 0 and have[0] == -1):
          raise JpegError(f'scan {scan.index}: coefficient {k} of component '
                          f'{c.ident} out of order (progression broken)')
        have[k] = scan.al
  for ident, have in bits.items():
    missing = [k for k, b in enumerate(have) if b != 0]
    if missing:
      raise JpegError(f'component {ident}: coefficients {missing[0]}..'
                      f'{missing[-1]} never fully coded after {len(scans)} '
                      'scan(s): the progressive JPEG was cut short')


def verify(data: bytes) -> JpegInfo:
  """Checks that `data` is a whole, consistently coded JPEG (see the module doc).

  Raises:
    JpegError: one line saying what is wrong and where.
  """
  data = bytes(data)
  if data[:2] != b'\xff\xd8':
    raise JpegError(f'not a JPEG (starts with {data[:4]!r})')
  pos, frame, restart = 2, None, 0
  tables: dict = {}
  scans: list[_Scan] = []
  while True:
    if pos >= len(data) or data[pos] != 0xFF:
      raise JpegError(f'expected a marker at byte {pos}')
    while pos < len(data) and data[pos] == 0xFF:
      pos += 1
    if pos >= len(data):
      raise JpegError('file ends inside a marker')
    marker = data[pos]
    pos += 1
    if marker == _EOI:
      break
    if marker in (_SOI, 0x00) or marker in _RST:
      raise JpegError(f'marker 0x{marker:02x} at byte {pos - 1} out of place')
    if marker == 0x01:  # TEM: no payload.
      continue
    payload, end = _segment(data, pos, f'0x{marker:02x}')
    if marker in _SOF_SUPPORTED:
      if frame is not None:
        raise JpegError('two frame headers')
      frame = _read_frame(payload, marker)
    elif marker in _SOF_UNSUPPORTED:
      raise JpegError(f'JPEG coding 0x{marker:02x} (lossless, hierarchical or '
                      'arithmetic) is not supported')
    elif marker == _DHT:
      _read_tables(payload, tables)
    elif marker == _DRI:
      if len(payload) != 2:
        raise JpegError('restart interval segment of the wrong size')
      restart = _u16(payload, 0)
    elif marker == _SOS:
      if frame is None:
        raise JpegError('scan before the frame header')
      scan = _Scan(payload, frame, tables, restart, len(scans) + 1)
      intervals, end = _scan_extent(data, end)
      scan.decode(data, intervals)
      scans.append(scan)
    elif marker not in _SKIPPED:
      raise JpegError(f'marker 0x{marker:02x} at byte {pos - 1} is not '
                      'supported')
    pos = end
  if frame is None or not scans:
    raise JpegError('no image data before the end marker')
  _coverage(frame, scans)
  trailing = data[pos:]
  if trailing.strip(_TRAILING_PADDING):
    raise JpegError(f'{len(trailing)} bytes after the end marker')
  return JpegInfo(frame.width, frame.height, len(frame.components),
                  frame.coding, len(scans))
