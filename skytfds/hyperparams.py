"""Training choices that depend on the device and the run, one function each.

In the spirit of big_transfer's `bit_hyperrule.py`: every `auto` default is a
named, testable function instead of a condition buried in the trainer.
"""

AUTO = 'auto'
PRECISIONS = ('auto', 'off', 'mixed_float16', 'mixed_bfloat16')
SWITCHES = ('auto', 'on', 'off')

# Backbones measured faster under mixed_bfloat16 on the CPU (DESIGN.md: frozen
# MobileNet forward at 224 px, 65 -> 93 images/s on 2 cores, 1.4x).
CPU_BFLOAT16_FASTER = frozenset({'mobilenet'})


def precision_policy(setting: str, model: str, *, on_gpu: bool) -> str:
  """The Keras dtype policy name for `--mixed_precision=setting`.

  auto: mixed_float16 on a GPU; on the CPU mixed_bfloat16 for the backbones
  measured faster with it (MobileNet), float32 for the others.
  """
  if setting not in PRECISIONS:
    raise ValueError(f'mixed_precision={setting!r}: choose one of {PRECISIONS}')
  if setting == 'off':
    return 'float32'
  if setting != AUTO:
    return setting
  if on_gpu:
    return 'mixed_float16'
  return 'mixed_bfloat16' if model in CPU_BFLOAT16_FASTER else 'float32'


def use_jit(setting: str, *, on_gpu: bool, dense_only: bool = False) -> bool:
  """XLA for `--jit_compile=setting`; auto: on for a GPU and for dense_only.

  XLA is a GPU win and, for convolutions, a CPU loss (DESIGN.md: MobileNet on
  this CPU falls from ~65 to ~9 images/s with jit_compile=True). A model of
  dense layers alone (dense_only: the head on cached embeddings) gains on the
  CPU too: with one epoch per execution (steps_per_execution) an epoch over
  2,431 MobileNet-sized embeddings took 0.49 s against 0.82 s without either
  (median of 4 interleaved runs, 2 cores; XLA alone or steps_per_execution
  alone was not timed apart).
  """
  if setting not in SWITCHES:
    raise ValueError(f'jit_compile={setting!r}: choose one of {SWITCHES}')
  return (on_gpu or dense_only) if setting == AUTO else setting == 'on'


def steps_per_execution(*, cached: bool, steps_per_epoch: int) -> int:
  """Training steps per call into the compiled function.

  The head on cached embeddings runs a whole epoch per call: its steps take
  a few milliseconds, and Keras' per-step Python loop is a large share of
  that (use_jit gives the measurement). Streamed images: one step per call
  (a step is a backbone pass of ~0.5 s; progress and callbacks stay per
  batch). The updates are the same either way.
  """
  return max(steps_per_epoch, 1) if cached else 1


def use_feature_cache(setting: str, *, fine_tune_layers: int,
                      augment: bool, from_scratch: bool = False) -> bool:
  """Whether to train the head on cached backbone embeddings.

  auto: on when the backbone is frozen all through (fine_tune_layers == 0) and
  the images are not augmented, because then the embeddings of an image never
  change and computing them once makes every later epoch nearly free. A
  from-scratch model (ugriz_cnn) trains every layer: never (the flag parser
  refuses 'on' for it).
  """
  if setting not in SWITCHES:
    raise ValueError(f'cache_features={setting!r}: choose one of {SWITCHES}')
  if from_scratch:
    return False
  if setting == AUTO:
    return fine_tune_layers == 0 and not augment
  return setting == 'on'
