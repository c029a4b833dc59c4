"""splits.split_of: pinned to known keys, because the splits must never move."""

import collections

from skytfds import splits

# Computed once and pinned: a change here moves objects between train and test
# in every dataset ever built, so it is never a refactoring.
PINNED = {
    '1237648720693755918': 'train',
    '1237645879579967591': 'train',
    1237663784217804830: 'validation',
    'pos:229.540000+42.760000': 'test',
    '0': 'train',
    'x': 'validation',
}


def test_split_of_is_pinned_to_known_keys():
  assert {key: splits.split_of(key) for key in PINNED} == PINNED


def test_an_int_key_and_its_text_are_the_same_object():
  assert splits.split_of(1237663784217804830) == splits.split_of(
      '1237663784217804830')


def test_proportions_are_80_10_10():
  counts = collections.Counter(splits.split_of(i) for i in range(20_000))
  assert set(counts) == set(splits.SPLITS)
  assert abs(counts['train'] / 20_000 - 0.8) < 0.01
  assert abs(counts['validation'] / 20_000 - 0.1) < 0.01
  assert abs(counts['test'] / 20_000 - 0.1) < 0.01
