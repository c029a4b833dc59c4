"""Suite train: wall time of N epochs of a frozen MobileNet + the study's head.

Baseline: model.fit over ImageDataGenerator. Project: trainers/train.py with
its defaults (cached embeddings). Both validation accuracies are reported.
"""

import pathlib
from typing import Any

from absl import flags

from benchmarks import common
from benchmarks import cutouts
from benchmarks.cutouts import BATCH_SIZE, IMAGE_SIZE
from skytfds import survey

FLAGS = flags.FLAGS  # those of tools/benchmark.py


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


def run(work: pathlib.Path, quick: bool) -> dict[str, Any]:
  import keras  # pylint: disable=g-import-not-at-top
  from skytfds import input_pipeline  # pylint: disable=g-import-not-at-top
  from skytfds import models  # pylint: disable=g-import-not-at-top
  from trainers import flags as trainer_flags  # pylint: disable=g-import-not-at-top
  from trainers import train  # pylint: disable=g-import-not-at-top
  per_class = FLAGS.per_class or (40 if quick else 100)
  epochs = FLAGS.epochs or (10 if quick else 50)
  data = cutouts.CutoutData(work, per_class)
  common.log(f'train: {data.count("train")} train / '
             f'{data.count("validation")} validation images, {epochs} epochs')
  load_before = common.load_average()

  workdir = common.fresh_dir(work / 'train-project')
  config = trainer_flags.TrainConfig(
      dataset='sdss_cutouts/custom', data_dir=str(data.data_dir),
      workdir=str(workdir), weights=models.WEIGHTS_NONE, epochs=epochs,
      batch_size=BATCH_SIZE)
  with common.Timer() as project_t:
    metrics = train.run(config)
  project_acc = metrics['validation']['accuracy']
  common.log(f'train: project {project_t.seconds:.1f} s, validation '
             f'accuracy {project_acc:.3f}')

  # Baseline: the same random backbone (same seed, BatchNorm calibrated on the
  # same first 64 training images as the trainer does), the study's fit.
  keras.utils.set_random_seed(0)
  classifier = models.build_model('mobilenet', weights=models.WEIGHTS_NONE,
                                  num_classes=len(survey.CLASSES))
  first = train.first_images(input_pipeline.make_dataset(
      data.builder, 'train', image_size=IMAGE_SIZE, batch_size=BATCH_SIZE),
                             train.CALIBRATION_IMAGES)
  models.calibrate_batch_norm(classifier, first)
  model = study_model(classifier)
  model.compile(optimizer=keras.optimizers.Adam(1e-3),
                loss='categorical_crossentropy', metrics=['accuracy'])
  train_gen = cutouts.flow_from_directory(data.jpeg_dir / 'train', shuffle=True)
  val_gen = cutouts.flow_from_directory(data.jpeg_dir / 'validation',
                                        shuffle=True)
  with common.Timer() as baseline_t:
    history = model.fit(train_gen, steps_per_epoch=train_gen.n // BATCH_SIZE,
                        epochs=epochs, validation_data=val_gen, verbose=0)
  baseline_acc = float(history.history['val_accuracy'][-1])
  test_gen = cutouts.flow_from_directory(data.jpeg_dir / 'test', shuffle=False)
  baseline_test_acc = float(model.evaluate(test_gen, verbose=0)[1])
  common.log(f'train: baseline {baseline_t.seconds:.1f} s, validation '
             f'accuracy {baseline_acc:.3f}')
  return common.result(
      'train', project=project_t.seconds, baseline=baseline_t.seconds,
      limit=None, unit='s', higher_is_better=False, epochs=epochs,
      train_images=data.count('train'),
      validation_images=data.count('validation'),
      test_images=data.count('test'),
      project_val_accuracy=round(project_acc, 4),
      baseline_val_accuracy=round(baseline_acc, 4),
      project_test_accuracy=round(metrics['test']['accuracy'], 4),
      baseline_test_accuracy=round(baseline_test_acc, 4),
      accuracy_not_worse=project_acc >= baseline_acc,
      project_precision=metrics['precision'],
      project_features_s=sum(f.get('seconds') or 0.0
                             for f in metrics['features'].values()),
      project_fit_s=metrics['train_time_s'], weights='none (BatchNorm '
      'calibrated)', load_before=load_before, load_after=common.load_average())
