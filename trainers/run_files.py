"""The files of a run's workdir that more than one trainer reads or writes.

Names, and the JSON writer: small and free of TensorFlow, so that train,
evaluate and predict share them without importing each other.
"""

import json
import os
import pathlib
import shutil
from typing import Any

from skytfds import files

RUN_CONFIG = 'run_config.json'   # the flags of the run, written first
METRICS_FILE = 'metrics.json'    # written last: its presence means finished
MODEL_FILE = 'model.keras'       # model inputs -> class probabilities
# run_config.json's record of what the model reads: RGB in [0, 255] (the
# frozen backbones) or the dataset's native input (ugriz_cnn); see
# skytfds/input_pipeline.py. Runs from before it was recorded are RGB.
INPUT_KEY = 'input'
RGB_INPUT = 'rgb'
NATIVE_INPUT = 'native'
HISTORY_PLOT = 'history.png'
CONFUSION_PLOT = 'confusion.png'


def write_json(path: str | os.PathLike, value: Any) -> None:
  """Write JSON atomically (skytfds.files): a reader never sees half of it."""
  files.write_text(path, json.dumps(value, indent=2, sort_keys=True) + '\n')


def reads_native_input(run_config: dict[str, Any]) -> bool:
  """Whether the run's model reads the native input rather than RGB."""
  return run_config.get(INPUT_KEY, RGB_INPUT) == NATIVE_INPUT


def remove_unstarted(workdir: pathlib.Path) -> bool:
  """Removes a workdir that this failed run created and left nothing of use in.

  "Nothing of use": no files but run_config.json (no checkpoint, embedding or
  metrics a rerun could resume from). Returns whether it was removed.
  """
  if not workdir.is_dir():
    return False
  kept = [p for p in workdir.rglob('*')
          if p.is_file() and p.relative_to(workdir).as_posix() != RUN_CONFIG]
  if kept:
    return False
  shutil.rmtree(workdir)
  return True
