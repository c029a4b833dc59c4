"""skytfds: SDSS imaging as TensorFlow Datasets.

Importing the package registers the four dataset builders (`sdss_filters`,
`sdss_rgb`, `sdss_cutouts`, `ps1_cutouts`) with TFDS, so that
`tfds.load('sdss_rgb/tiny')` works by name.

TensorFlow is imported only when it is needed: if TFDS is already imported
the builders register at once, otherwise the moment TFDS is imported. So
tools that need no TensorFlow (the emulator, the service clients) start fast.
"""

import importlib.abc
import importlib.util
import sys

__version__ = '0.1.0'

_TFDS = 'tensorflow_datasets'


def _register_builders() -> None:
  from skytfds import datasets  # pylint: disable=g-import-not-at-top,unused-import,import-outside-toplevel


class _RegisterAfterTfds(importlib.abc.MetaPathFinder):
  """Registers the builders once `tensorflow_datasets` has finished importing."""

  def find_spec(self, name, path=None, target=None):
    if name != _TFDS:
      return None
    sys.meta_path.remove(self)  # One shot; the real finders locate the module.
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
      return spec
    exec_module = spec.loader.exec_module

    def exec_then_register(module):
      exec_module(module)
      _register_builders()

    spec.loader.exec_module = exec_then_register
    return spec


if _TFDS in sys.modules:
  _register_builders()
elif not any(isinstance(f, _RegisterAfterTfds) for f in sys.meta_path):
  sys.meta_path.insert(0, _RegisterAfterTfds())
