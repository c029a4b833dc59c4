"""Suite train: 50 epochs of a frozen MobileNet + the study's head; ugriz_cnn.

On `sdss_cutouts/small` (2,392 training images; --quick: a 40-per-class
custom build). Baseline: the study's model.fit over ImageDataGenerator for a
few epochs (every epoch does the same work), timed per epoch and scaled to the
project's epochs by the median epoch. Project: trainers/train.py with its
defaults (cached embeddings), its whole run for all epochs. Floor: one
backbone pass over the training images plus the head's epochs fitted alone on
their embeddings. Both validation accuracies are reported.

five_band: ugriz_cnn (all five bands, from scratch) for the same epochs on
`sdss_filters/small_dense` (the frame-economical selection), beside the frozen
MobileNet on the same dataset.
"""

import pathlib
import statistics
import time
from typing import Any

from absl import flags

from benchmarks import common
from benchmarks import cutouts
from benchmarks.cutouts import BATCH_SIZE, IMAGE_SIZE
from skytfds import survey

FLAGS = flags.FLAGS  # those of tools/benchmark.py

FIVE_BAND_DATASET = 'sdss_filters/small_dense'


def study_model(classifier):
  """The study's model: frozen application -> pooling -> dense head.

  preprocess_input runs in the generator, as in the study, so the model
  starts at the application (sharing the classifier's layers and weights).
  """
  import keras  # pylint: disable=g-import-not-at-top
  images = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name='images')
  x = classifier.application(images, training=False)
  x = keras.layers.GlobalAveragePooling2D(name='pool')(x)
  return keras.Model(images, classifier.head(x), name='study_model')


def calibrated_mobilenet(builder, policy: str = 'float32'):
  """The random MobileNet both sides use: seed 0, BatchNorm calibrated on
  the first 64 training images, as the trainer does it."""
  import keras  # pylint: disable=g-import-not-at-top
  from skytfds import input_pipeline  # pylint: disable=g-import-not-at-top
  from skytfds import models  # pylint: disable=g-import-not-at-top
  from trainers import train  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  with train.global_policy(policy):
    classifier = models.build_model('mobilenet', weights=models.WEIGHTS_NONE,
                                    num_classes=len(survey.CLASSES))
    first = train.first_images(input_pipeline.make_dataset(
        builder, 'train', image_size=IMAGE_SIZE, batch_size=BATCH_SIZE),
                               train.CALIBRATION_IMAGES)
    models.calibrate_random_backbone(classifier, first)
  return classifier


def baseline(data: cutouts.CutoutData, epochs: int) -> dict[str, Any]:
  """The study's model.fit for `epochs` epochs, each epoch timed."""
  import keras  # pylint: disable=g-import-not-at-top
  model = study_model(calibrated_mobilenet(data.builder))
  model.compile(optimizer=keras.optimizers.Adam(1e-3),
                loss='categorical_crossentropy', metrics=['accuracy'])
  train_gen = cutouts.flow_from_directory(data.jpeg_dir / 'train', shuffle=True)
  val_gen = cutouts.flow_from_directory(data.jpeg_dir / 'validation',
                                        shuffle=True)
  starts, seconds = [], []
  timer = keras.callbacks.LambdaCallback(
      on_epoch_begin=lambda epoch, logs: starts.append(time.perf_counter()),
      on_epoch_end=lambda epoch, logs: seconds.append(
          time.perf_counter() - starts[-1]))
  # The study passed steps_per_epoch=n // 32. Keras 3 keeps the generator's
  # iterator across epochs when that is below len(generator), so its last
  # batch became the whole of every second epoch (one step; measured 5.5 s
  # against 34 s; keras/src/trainers/epoch_iterator.py, _enumerate_iterator).
  # Every image once per epoch, as the project's epochs do: len(generator).
  history = model.fit(train_gen, steps_per_epoch=len(train_gen),
                      epochs=epochs, validation_data=val_gen, verbose=0,
                      callbacks=[timer])
  test_gen = cutouts.flow_from_directory(data.jpeg_dir / 'test', shuffle=False)
  return {'epoch_s': [round(s, 2) for s in seconds],
          'steps_per_epoch': len(train_gen),
          'val_accuracy': float(history.history['val_accuracy'][-1]),
          'test_accuracy': float(model.evaluate(test_gen, verbose=0)[1])}


def floor(data: cutouts.CutoutData, epochs: int, project: dict[str, Any]
          ) -> dict[str, float]:
  """One backbone pass over the training images + the head's epochs alone.

  The images are decoded into memory first (untimed), so the pass is the
  backbone's arithmetic; the head is fitted on those embeddings without
  validation, checkpoints or plots. Both as the project ran them (its
  metrics: precision policy, the head's XLA, an epoch per execution).
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  from skytfds import hyperparams  # pylint: disable=g-import-not-at-top
  from skytfds import input_pipeline  # pylint: disable=g-import-not-at-top
  from skytfds import models  # pylint: disable=g-import-not-at-top
  from trainers import embeddings  # pylint: disable=g-import-not-at-top
  from trainers import train  # pylint: disable=g-import-not-at-top
  policy = project['precision']
  classifier = calibrated_mobilenet(data.builder, policy)
  with train.global_policy(policy):
    images = input_pipeline.make_dataset(
        data.builder, 'train', image_size=IMAGE_SIZE, batch_size=BATCH_SIZE,
        cache=True)
    for _ in images:  # decoded into the cache, untimed
      pass
    classifier.features.predict_on_batch(next(iter(images))[0])  # traced
    vectors, labels = [], []
    with common.Timer() as pass_t:
      for batch, one_hot in images:
        vectors.append(np.asarray(classifier.features.predict_on_batch(batch),
                                  np.float32))
        labels.append(np.argmax(one_hot.numpy(), axis=-1))
    head_data = embeddings.embedding_dataset(
        np.concatenate(vectors), np.concatenate(labels), len(survey.CLASSES),
        BATCH_SIZE, shuffle=True)
    models.compile_for_training(
        classifier.head, project['flags']['learning_rate'],
        jit_compile=project['head_jit_compile'],
        steps_per_execution=hyperparams.steps_per_execution(
            cached=True, steps_per_epoch=len(head_data)))
    with common.Timer() as head_t:
      classifier.head.fit(head_data, epochs=epochs, verbose=0)
  return {'floor_backbone_pass_s': pass_t.seconds,
          'floor_head_s': head_t.seconds,
          'floor_s': pass_t.seconds + head_t.seconds}


def train_run(work: pathlib.Path, name: str, dataset: str, data_dir: str,
              model: str, epochs: int) -> tuple[dict[str, Any], float]:
  """trainers.train.run with its defaults, in a fresh workdir: (metrics, s)."""
  from skytfds import models  # pylint: disable=g-import-not-at-top
  from trainers import flags as trainer_flags  # pylint: disable=g-import-not-at-top
  from trainers import train  # pylint: disable=g-import-not-at-top
  config = trainer_flags.TrainConfig(
      dataset=dataset, data_dir=data_dir, model=model,
      workdir=str(common.fresh_dir(work / name)),
      weights=models.WEIGHTS_NONE, epochs=epochs, batch_size=BATCH_SIZE)
  with common.Timer() as t:
    metrics = train.run(config)
  common.log(f'train: {model} on {dataset}: {t.seconds:.1f} s, test macro-F1 '
             f'{metrics["test"]["macro_f1"]:.3f}')
  return metrics, t.seconds


def model_row(metrics: dict[str, Any], seconds: float) -> dict[str, Any]:
  """What the five_band table shows of one run."""
  return {'run_s': round(seconds, 1),
          'fit_s': round(metrics['train_time_s'], 1),
          'fit_images_per_s': round(metrics['train_images_per_s'] or 0.0, 1),
          'epochs': metrics['epochs'],
          'train_images': metrics['num_examples']['train'],
          'test_images': metrics['num_examples']['test'],
          'test_macro_f1': round(metrics['test']['macro_f1'], 4),
          'test_accuracy': round(metrics['test']['accuracy'], 4),
          'precision': metrics['precision']}


def five_band(work: pathlib.Path, dataset: str, data_dir: str, epochs: int
              ) -> dict[str, Any]:
  """ugriz_cnn and the frozen MobileNet, each for `epochs` on `dataset`."""
  rows = {}
  for model in ('ugriz_cnn', 'mobilenet'):
    rows[model] = model_row(*train_run(work, f'train-{model}', dataset,
                                       data_dir, model, epochs))
  return {'dataset': dataset, 'selection': (
      'dense (frame-economical)' if dataset.endswith('_dense') else 'custom'),
          **rows}


def run(work: pathlib.Path, quick: bool) -> dict[str, Any]:
  epochs = FLAGS.epochs or (10 if quick else 50)
  baseline_epochs = FLAGS.baseline_epochs or 3
  data_dir = pathlib.Path(FLAGS.data_dir or work / 'data')
  if quick or FLAGS.per_class:
    data = cutouts.CutoutData.custom(work, FLAGS.per_class or 40)
  else:
    data = cutouts.CutoutData.from_config(work, data_dir, 'small')
  common.log(f'train: {data.dataset}, {data.count("train")} train / '
             f'{data.count("validation")} validation images; project '
             f'{epochs} epochs, baseline {baseline_epochs} scaled to {epochs}')
  load_before = common.load_average()

  metrics, project_s = train_run(work, 'train-project', data.dataset,
                                 data.data_dir, 'mobilenet', epochs)
  base = baseline(data, baseline_epochs)
  epoch_s = statistics.median(base['epoch_s'])
  common.log(f'train: baseline epochs {base["epoch_s"]} s: {epochs} epochs '
             f'~ {epoch_s * epochs:.0f} s')
  low = floor(data, epochs, metrics)
  common.log(f'train: floor {low["floor_s"]:.1f} s')
  history = metrics['history']
  project_acc = metrics['validation']['accuracy']
  extra = {}
  if FLAGS.five_band:
    if quick:  # the code path only, on the quick cutouts: ugriz_cnn alone
      extra['five_band'] = {
          'dataset': data.dataset, 'selection': 'custom (quick: 3-channel)',
          'ugriz_cnn': model_row(*train_run(
              work, 'train-ugriz_cnn', data.dataset, data.data_dir,
              'ugriz_cnn', 2)),
          'mobilenet': model_row(metrics, project_s)}
    else:
      builder = cutouts.prepared_builder(work, data_dir, FIVE_BAND_DATASET)
      extra['five_band'] = five_band(work, FIVE_BAND_DATASET,
                                     cutouts.data_dir_of(builder), epochs)
  return common.result(
      'train', project=project_s, baseline=epoch_s * epochs, limit=None,
      unit='s', higher_is_better=False, dataset=data.dataset, epochs=epochs,
      train_images=data.count('train'),
      validation_images=data.count('validation'),
      test_images=data.count('test'),
      baseline_epochs_run=len(base['epoch_s']),
      baseline_epoch_s=base['epoch_s'],
      baseline_measured_s=round(sum(base['epoch_s']), 2),
      baseline_steps_per_epoch=base['steps_per_epoch'],
      baseline_scaled=f'median epoch x {epochs} (epochs 1..'
      f'{len(base["epoch_s"])} measured)',
      project_val_accuracy=round(project_acc, 4),
      project_val_accuracy_at_baseline_epochs=round(
          history[min(baseline_epochs, len(history)) - 1]['val_accuracy'], 4),
      baseline_val_accuracy=round(base['val_accuracy'], 4),
      project_test_accuracy=round(metrics['test']['accuracy'], 4),
      baseline_test_accuracy=round(base['test_accuracy'], 4),
      accuracy_not_worse=project_acc >= base['val_accuracy'],
      project_precision=metrics['precision'],
      project_head_jit=metrics['head_jit_compile'],
      project_features_s=sum(f.get('seconds') or 0.0
                             for f in metrics['features'].values()),
      project_fit_s=metrics['train_time_s'], **low,
      project_over_floor=round(project_s / low['floor_s'], 2),
      weights='none (BatchNorm calibrated)', **extra,
      load_before=load_before, load_after=common.load_average())
