"""The files of a run's workdir that more than one trainer reads or writes.

Names, and the JSON writer: small and free of TensorFlow, so that train,
evaluate and predict share them without importing each other.
"""

import json
import os
from typing import Any

from skytfds import files

RUN_CONFIG = 'run_config.json'   # the flags of the run, written first
METRICS_FILE = 'metrics.json'    # written last: its presence means finished
MODEL_FILE = 'model.keras'       # images [0, 255] -> class probabilities
HISTORY_PLOT = 'history.png'
CONFUSION_PLOT = 'confusion.png'


def write_json(path: str | os.PathLike, value: Any) -> None:
  """Write JSON atomically (skytfds.files): a reader never sees half of it."""
  files.write_text(path, json.dumps(value, indent=2, sort_keys=True) + '\n')
