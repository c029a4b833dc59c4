"""Train/validation/test assignment by a stable hash of the object key.

The same object lands in the same split in every dataset, and adding objects
never moves existing ones.
"""

import hashlib

SPLITS = ('train', 'validation', 'test')
# Cumulative per-mille boundaries: 80% train, 10% validation, 10% test.
_BOUNDS = ((800, 'train'), (900, 'validation'), (1000, 'test'))


def split_of(key: str | int) -> str:
  """The split of the object with this key (an objid, or another stable id)."""
  digest = hashlib.sha256(str(key).encode('ascii')).digest()
  bucket = int.from_bytes(digest[:8], 'big') % 1000
  for bound, name in _BOUNDS:
    if bucket < bound:
      return name
  raise AssertionError('unreachable')
