r"""Train a classifier on one dataset; everything under --workdir.

  python -m trainers.train --model=mobilenet --dataset=sdss_cutouts/tiny \
      --data_dir=DIR --workdir=DIR [--epochs=10] [--weights=imagenet|none|PATH]
  python -m trainers.train --model=ugriz_cnn --weights=none \
      --dataset=sdss_filters/small_dense --workdir=DIR --epochs=50

Frozen backbones: stage 1 trains the head (backbone frozen), on cached
embeddings when --cache_features resolves to on, else on images streamed
through the backbone. Stage 2 (--fine_tune_layers=N > 0) unfreezes the top N
backbone layers and streams images at --fine_tune_learning_rate.
ugriz_cnn: one stage, 'model', trains every layer on the dataset's native
input (all bands, unstretched, and the padding mask), augmented inside the
model. Each stage checkpoints weights, optimizer state and history at every
epoch end; rerunning with the same workdir resumes after the last completed
epoch.

metrics.json holds, besides the per-split reports (accuracy, macro_f1,
per_class precision/recall/f1/support, confusion_matrix): epochs, history,
wall_time_s (the whole run), train_time_s and train_images_per_s (training
images per second of model.fit, validation included), features (per split:
computed or reused, seconds, images/s through the backbone), the precision
policy, jit_compile (and head_jit_compile), cache_features and the flags.
"""

import contextlib
import dataclasses
import functools
import pathlib
import time
from typing import Any, Callable, Iterator

from absl import app
from absl import flags
from absl import logging
import keras
import numpy as np
import tensorflow as tf

from skytfds import hyperparams
from skytfds import input_pipeline
from skytfds import models
from trainers import checkpoints
from trainers import embeddings
from trainers import flags as trainer_flags
from trainers import metrics as metrics_lib
from trainers import plots
from trainers import run_files
from trainers.run_files import METRICS_FILE, MODEL_FILE

HEAD_STAGE = 'head'
MODEL_STAGE = 'model'  # a from-scratch model: every layer in one stage
FINE_TUNE_STAGE = 'fine_tune'
SPLITS = ('train', 'validation', 'test')
EVALUATED_SPLITS = ('validation', 'test')
# Images that calibrate a randomly initialised backbone (weights=none): its
# BatchNorm statistics, or for VGG16 the scale and offset of each convolution.
CALIBRATION_IMAGES = 64

# split, training=False, *, every_epoch=False -> batches of (images, one-hot).
ImageSource = Callable[..., tf.data.Dataset]


def make_strategy(name: str) -> tf.distribute.Strategy:
  """default | mirrored (all local GPUs) | multi_worker (TF_CONFIG cluster)."""
  if name == 'mirrored':
    return tf.distribute.MirroredStrategy()
  if name == 'multi_worker':
    return tf.distribute.MultiWorkerMirroredStrategy()
  return tf.distribute.get_strategy()


def worker_workdir(strategy: tf.distribute.Strategy,
                   workdir: pathlib.Path) -> pathlib.Path:
  """The chief writes the workdir; other workers a scratch folder inside it."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  task_type = getattr(resolver, 'task_type', None)
  task_id = getattr(resolver, 'task_id', 0) or 0
  if task_type in (None, 'chief') or (task_type == 'worker' and task_id == 0
                                       and 'chief' not in
                                       resolver.cluster_spec().as_dict()):
    return workdir
  return workdir / 'workers' / f'{task_type}_{task_id}'


def open_workdir(config: trainer_flags.TrainConfig,
                 strategy: tf.distribute.Strategy) -> pathlib.Path:
  """This worker's workdir, created; RunError if it holds another run."""
  workdir = worker_workdir(strategy, pathlib.Path(config.workdir))
  workdir.mkdir(parents=True, exist_ok=True)
  if (workdir / run_files.RUN_CONFIG).exists():
    trainer_flags.check_same_run(
        trainer_flags.read_run_config(workdir), config)
  return workdir


def on_gpu() -> bool:
  return bool(tf.config.list_physical_devices('GPU'))


@dataclasses.dataclass(frozen=True)
class Choices:
  """What the 'auto' flags resolve to on this machine."""
  gpu: bool
  policy: str       # the Keras mixed precision policy
  jit: bool         # for models that see images
  use_cache: bool   # stage 1 on cached embeddings
  head_jit: bool    # for stage 1 (the head alone when use_cache)

  @classmethod
  def resolve(cls, config: trainer_flags.TrainConfig) -> 'Choices':
    gpu = on_gpu()
    use_cache = hyperparams.use_feature_cache(
        config.cache_features, fine_tune_layers=config.fine_tune_layers,
        augment=config.augment,
        from_scratch=models.is_from_scratch(config.model))
    return cls(
        gpu=gpu,
        policy=hyperparams.precision_policy(config.mixed_precision,
                                            config.model, on_gpu=gpu),
        jit=hyperparams.use_jit(config.jit_compile, on_gpu=gpu),
        use_cache=use_cache,
        head_jit=hyperparams.use_jit(config.jit_compile, on_gpu=gpu,
                                     dense_only=use_cache))


@contextlib.contextmanager
def global_policy(policy: str) -> Iterator[None]:
  """Keras' global mixed precision policy for the block, then the old one."""
  previous = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(policy)
  try:
    yield
  finally:
    keras.mixed_precision.set_global_policy(previous)


def build_classifier(config: trainer_flags.TrainConfig,
                     strategy: tf.distribute.Strategy, builder,
                     num_classes: int) -> models.Classifier:
  if models.is_from_scratch(config.model):
    stamp = (input_pipeline.image_feature(builder)
             == input_pipeline.STAMP_FEATURE)
    shape = (models.ugriz_cnn.INPUT_SIZE, models.ugriz_cnn.INPUT_SIZE,
             input_pipeline.native_channels(builder))
    with strategy.scope():
      return models.build_from_scratch(
          config.model, shape, weights=config.weights,
          num_classes=num_classes,
          bands=input_pipeline.STAMP_BANDS if stamp else None,
          seed=config.seed, dim_max_mag=config.dim_max_mag)
  with strategy.scope():
    classifier = models.build_model(config.model, weights=config.weights,
                                    num_classes=num_classes)
    # Checked now rather than after the first stage has run.
    models.set_fine_tune_layers(classifier, config.fine_tune_layers)
    models.set_fine_tune_layers(classifier, 0)
  return classifier


def write_run_config(workdir: pathlib.Path,
                     config: trainer_flags.TrainConfig, builder,
                     classifier: models.Classifier, policy: str) -> None:
  feature = input_pipeline.image_feature(builder)
  run_files.write_json(workdir / run_files.RUN_CONFIG, {
      **config.to_json(),
      'class_names': input_pipeline.class_names(builder),
      'image_feature': feature,
      'feature_shape': list(builder.info.features[feature].shape),
      'input_size': classifier.input_size,
      run_files.INPUT_KEY: (run_files.NATIVE_INPUT if classifier.native
                            else run_files.RGB_INPUT),
      'precision': policy})


def image_source(config: trainer_flags.TrainConfig, builder,
                 classifier: models.Classifier) -> ImageSource:
  """The run's image datasets: images(split, training, every_epoch=...)."""
  def images(split: str, training: bool = False, *, every_epoch: bool = False
             ) -> tf.data.Dataset:
    # every_epoch: streamed once per epoch, so worth keeping decoded.
    return input_pipeline.make_dataset(
        builder, split, image_size=classifier.input_size,
        batch_size=config.batch_size, bands=config.bands, shuffle=training,
        augment_images=training and config.augment, seed=config.seed,
        cache=every_epoch, native=classifier.native)
  return images


def first_images(dataset: tf.data.Dataset, count: int) -> np.ndarray:
  """Up to `count` images from a dataset of (images, labels) batches."""
  batches, total = [], 0
  for images, _ in dataset:
    batches.append(images.numpy())
    total += len(batches[-1])
    if total >= count:
      break
  return np.concatenate(batches)[:count]


def calibrate(config: trainer_flags.TrainConfig,
              classifier: models.Classifier, images: ImageSource
              ) -> tuple[str | None, int]:
  """Calibrate a random backbone (weights=none): (method, layers calibrated)."""
  if config.weights != models.WEIGHTS_NONE or classifier.native:
    return None, 0
  # Deterministic (unshuffled) images, so a resumed run rebuilds the same
  # backbone.
  return models.calibrate_random_backbone(
      classifier, first_images(images('train'), CALIBRATION_IMAGES))


@dataclasses.dataclass
class HeadInputs:
  """What stage 1 fits, and on what."""
  model: keras.Model  # the head on embeddings, or the whole classifier
  train: tf.data.Dataset
  validation: tf.data.Dataset
  cache: embeddings.Embeddings | None  # None when streaming images


def head_inputs(config: trainer_flags.TrainConfig,
                classifier: models.Classifier, images: ImageSource,
                workdir: pathlib.Path,
                key_of: Callable[[str], dict[str, Any]], *, use_cache: bool,
                num_classes: int) -> HeadInputs:
  """Stage 1 over cached embeddings (use_cache) or streamed images."""
  if not use_cache:
    return HeadInputs(classifier.model, images('train', True, every_epoch=True),
                      images('validation', every_epoch=True), None)
  cache = embeddings.embed_splits(classifier, images, SPLITS,
                                  workdir / embeddings.FEATURES_DIR, key_of)
  if cache.computed:
    # A checkpointed head was fitted to other embeddings (the data, backbone
    # or calibration changed, or the cache was removed).
    checkpoints.discard_checkpoints(workdir, 'embeddings were (re)computed')
  return HeadInputs(
      classifier.head,
      cache.dataset('train', num_classes, config.batch_size, shuffle=True,
                    seed=config.seed),
      cache.dataset('validation', num_classes, config.batch_size), cache)


def fine_tune(config: trainer_flags.TrainConfig,
              strategy: tf.distribute.Strategy, classifier: models.Classifier,
              images: ImageSource, workdir: pathlib.Path, jit: bool
              ) -> checkpoints.StageResult:
  """Stage 2: the top backbone layers unfrozen, over streamed images."""
  with strategy.scope():
    models.set_fine_tune_layers(classifier, config.fine_tune_layers)
    models.compile_for_training(classifier.model,
                                config.fine_tune_learning_rate,
                                jit_compile=jit)
  return checkpoints.fit_stage(
      FINE_TUNE_STAGE, classifier.model, classifier.model,
      images('train', True, every_epoch=True),
      images('validation', every_epoch=True),
      epochs=config.fine_tune_epochs, workdir=workdir,
      first_epoch=config.epochs)


def evaluate_splits(classifier: models.Classifier, images: ImageSource,
                    cache: embeddings.Embeddings | None, names: list[str]
                    ) -> dict[str, dict[str, Any]]:
  """The classification report of each evaluated split.

  Over cached embeddings when given (the backbone is the one they came
  from), else the full model over images.
  """
  reports = {}
  for split in EVALUATED_SPLITS:
    if cache is not None:
      truth, predicted = cache.predict_labels(classifier.head, split)
    else:
      truth, predicted = metrics_lib.predict_labels(classifier.model,
                                                    images(split))
    reports[split] = metrics_lib.classification_report(truth, predicted, names)
  return reports


def summary(config: trainer_flags.TrainConfig, choices: Choices, *,
            names: list[str], stages: dict[str, checkpoints.StageResult],
            reports: dict[str, dict[str, Any]], counts: dict[str, int],
            cache: embeddings.Embeddings | None,
            calibration: tuple[str | None, int], wall_time_s: float
            ) -> dict[str, Any]:
  """The metrics.json dictionary of a finished run."""
  history = [row for stage in stages.values() for row in stage.rows]
  train_seconds = sum(s.seconds for s in stages.values())
  images_trained = sum(s.epochs_run for s in stages.values()) * counts['train']
  return {
      'dataset': config.dataset,
      'model': config.model,
      'class_names': names,
      'validation': reports['validation'],
      'test': reports['test'],
      'evaluations': {f'{config.dataset}:{split}': reports[split]
                      for split in reports},
      'epochs': len(history),
      'epochs_run': {name: s.epochs_run for name, s in stages.items()},
      'resumed_from_epoch': {name: s.resumed_from for name, s in stages.items()},
      'history': history,
      'wall_time_s': wall_time_s,
      'train_time_s': train_seconds,
      'train_images_per_s': (images_trained / train_seconds
                             if train_seconds > 0 else None),
      'features': {} if cache is None else cache.stats,
      'calibration': calibration[0],
      'calibrated_layers': calibration[1],
      'num_examples': counts,
      'precision': choices.policy,
      'jit_compile': choices.jit,
      'head_jit_compile': choices.head_jit,
      'cache_features': choices.use_cache,
      'device': 'gpu' if choices.gpu else 'cpu',
      'flags': config.to_json(),
  }


def run(config: trainer_flags.TrainConfig) -> dict[str, Any]:
  """Train, evaluate and write everything under config.workdir; the metrics.

  A run that fails before it wrote anything a rerun could resume from
  (a checkpoint, embeddings) removes the workdir it created: a failed first
  try leaves no empty folder behind.
  """
  created = not pathlib.Path(config.workdir).exists()
  try:
    return _run(config)
  except BaseException:
    if created and run_files.remove_unstarted(pathlib.Path(config.workdir)):
      logging.info('removed %s: the run failed before writing anything to '
                   'resume from', config.workdir)
    raise


def _run(config: trainer_flags.TrainConfig) -> dict[str, Any]:
  start = time.perf_counter()
  # First: MultiWorkerMirroredStrategy must exist before other TF operations.
  strategy = make_strategy(config.strategy)
  builder = input_pipeline.get_builder(config.dataset, config.data_dir)
  models.check_model(config.model)
  if config.batch_size <= 0:
    raise trainer_flags.RunError(
        f'batch_size={config.batch_size}: must be at least 1')
  workdir = open_workdir(config, strategy)
  choices = Choices.resolve(config)
  names = input_pipeline.class_names(builder)
  logging.info('%s on %s: precision %s, jit %s (head %s), cached features %s',
               config.model, config.dataset, choices.policy, choices.jit,
               choices.head_jit, choices.use_cache)

  keras.utils.set_random_seed(config.seed)
  with global_policy(choices.policy):
    classifier = build_classifier(config, strategy, builder, len(names))
    # After the weights are checked: a wrong weights file is said first.
    input_pipeline.require_splits(builder, SPLITS)
    write_run_config(workdir, config, builder, classifier, choices.policy)
    images = image_source(config, builder, classifier)
    counts = {split: input_pipeline.num_examples(builder, split)
              for split in SPLITS}
    calibration = calibrate(config, classifier, images)
    key_of = functools.partial(
        embeddings.features_key, config, builder, policy=choices.policy,
        input_size=classifier.input_size, calibration=calibration[0])
    with strategy.scope():
      head = head_inputs(config, classifier, images, workdir, key_of,
                         use_cache=choices.use_cache, num_classes=len(names))
      steps_per_epoch = -(-counts['train'] // config.batch_size)
      models.compile_for_training(
          head.model, config.learning_rate, jit_compile=choices.head_jit,
          decay_steps=(config.epochs * steps_per_epoch
                       if classifier.native else None),
          steps_per_execution=hyperparams.steps_per_execution(
              cached=choices.use_cache, steps_per_epoch=steps_per_epoch))
    # What the first stage changes and checkpoints: the head, or all of a
    # from-scratch model.
    stage, changed = ((MODEL_STAGE, classifier.model) if classifier.native
                      else (HEAD_STAGE, classifier.head))
    stages = {stage: checkpoints.fit_stage(
        stage, head.model, changed, head.train, head.validation,
        epochs=config.epochs, workdir=workdir)}
    if config.fine_tune_layers:
      stages[FINE_TUNE_STAGE] = fine_tune(config, strategy, classifier, images,
                                          workdir, choices.jit)
    classifier.model.save(workdir / MODEL_FILE)
    # Fine-tuning changed the backbone the cached embeddings came from.
    reports = evaluate_splits(
        classifier, images, None if config.fine_tune_layers else head.cache,
        names)

  result = summary(config, choices, names=names, stages=stages,
                   reports=reports, counts=counts, cache=head.cache,
                   calibration=calibration,
                   wall_time_s=time.perf_counter() - start)
  result['data_source'] = input_pipeline.data_source(builder)
  result['provenance'] = input_pipeline.provenance(builder)
  run_files.write_json(workdir / METRICS_FILE, result)
  plots.write_run_plots(workdir, result)
  return result


def main(argv):
  if len(argv) > 1:
    trainer_flags.exit_with_error('train', f'unexpected arguments {argv[1:]}')
  config = trainer_flags.TrainConfig.from_flags()
  try:
    result = run(config)
  except (input_pipeline.DatasetError, models.ModelError,
          trainer_flags.RunError) as e:
    trainer_flags.exit_with_error('train', e)
  for split in EVALUATED_SPLITS:
    report = result[split]
    print(f'{split}: accuracy {report["accuracy"]:.4f}, '
          f'macro-F1 {report["macro_f1"]:.4f} ({report["num_examples"]} images)')
  print(f'wrote {config.workdir}/{METRICS_FILE}, {MODEL_FILE}, '
        f'{run_files.HISTORY_PLOT}, {run_files.CONFUSION_PLOT}')


if __name__ == '__main__':
  trainer_flags.define_train_flags()
  # Listed by --help, not only by --helpfull.
  flags.adopt_module_key_flags(trainer_flags)
  app.run(main)
