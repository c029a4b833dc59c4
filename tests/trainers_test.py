"""Tests of the trainers: train, resume, cache, evaluate, predict, flags."""

import json
import os
import pathlib
import subprocess
import sys

from absl import flags
import numpy as np
import pytest

from skytfds import catalog
from skytfds import input_pipeline
from skytfds import models
from trainers import checkpoints
from trainers import evaluate as evaluate_lib
from trainers import flags as trainer_flags
from trainers import metrics as metrics_lib
from trainers import predict as predict_lib
from trainers import train

import fake_datasets

REPO = pathlib.Path(__file__).resolve().parents[1]
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp('tfds')
  fake_datasets.build(fake_datasets.FakeSdssCutouts, path)
  fake_datasets.build(fake_datasets.FakeSdssFilters, path)
  return path


def config(data_dir, workdir, **overrides) -> trainer_flags.TrainConfig:
  values = dict(dataset='fake_sdss_cutouts', data_dir=str(data_dir),
                workdir=str(workdir), model='mobilenet', weights='none',
                epochs=6, batch_size=8, mixed_precision='off', seed=0)
  values.update(overrides)
  return trainer_flags.TrainConfig(**values)


@pytest.fixture(scope='module')
def cached_run(data_dir, tmp_path_factory):
  workdir = tmp_path_factory.mktemp('cached')
  return workdir, train.run(config(data_dir, workdir, cache_features='on'))


# --- metrics ---------------------------------------------------------------

def test_classification_report_by_hand():
  report = metrics_lib.classification_report(
      [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 0, 2], ['GALAXY', 'QSO', 'STAR'])
  assert report['confusion_matrix'] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
  assert report['accuracy'] == pytest.approx(4 / 6)
  galaxy = report['per_class']['GALAXY']
  assert galaxy['precision'] == pytest.approx(0.5)
  assert galaxy['recall'] == pytest.approx(0.5)
  qso = report['per_class']['QSO']
  assert qso['precision'] == pytest.approx(2 / 3)
  assert qso['f1'] == pytest.approx(0.8)
  star = report['per_class']['STAR']
  assert star['f1'] == pytest.approx(2 / 3)
  assert report['macro_f1'] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_class_never_predicted_scores_zero_not_nan():
  report = metrics_lib.classification_report([0, 1, 2], [0, 0, 0], 'ABC')
  assert report['per_class']['B'] == {'precision': 0.0, 'recall': 0.0,
                                      'f1': 0.0, 'support': 1}
  assert np.isfinite(report['macro_f1'])


def test_macro_f1_leaves_out_a_class_absent_from_labels_and_predictions():
  # A STAR/GALAXY set: QSO never occurs and is never predicted.
  report = metrics_lib.classification_report(
      [0, 0, 2, 2], [0, 2, 2, 2], ['GALAXY', 'QSO', 'STAR'])
  galaxy_f1, star_f1 = 2 / 3, 0.8
  assert report['macro_f1'] == pytest.approx((galaxy_f1 + star_f1) / 2)
  # Predicted once without occurring: a false positive, so it counts (F1 0).
  report = metrics_lib.classification_report(
      [0, 0, 2, 2], [0, 1, 2, 2], ['GALAXY', 'QSO', 'STAR'])
  assert report['macro_f1'] == pytest.approx((2 / 3 + 0 + 1) / 3)


def test_accuracy_in_bins_by_hand():
  cells = metrics_lib.accuracy_in_bins(
      [0, 1, 2, 2, 1], [0, 1, 0, 2, 1], [18.0, 20.0, 20.5, np.nan, 23.0],
      metrics_lib.R_MAG_BINS)
  assert cells['r < 19'] == {'n': 1, 'accuracy': 1.0, 'stderr': 0.0}
  assert cells['19-21']['n'] == 2 and cells['19-21']['accuracy'] == 0.5
  assert cells['19-21']['stderr'] == pytest.approx(0.5 / np.sqrt(2))
  assert cells['21-22'] == {'n': 0, 'accuracy': None, 'stderr': None}
  assert cells['r > 22']['n'] == 1  # the NaN magnitude is in no bin
  with pytest.raises(ValueError, match='5 labels, 5 predictions, 4 values'):
    metrics_lib.accuracy_in_bins([0] * 5, [0] * 5, [1.0] * 4, metrics_lib.R_MAG_BINS)


# --- train -----------------------------------------------------------------

def test_run_writes_metrics_model_and_plots(cached_run):
  workdir, result = cached_run
  for name in ('metrics.json', 'model.keras', 'run_config.json'):
    assert (workdir / name).is_file(), name
  for name in ('history.png', 'confusion.png'):
    assert (workdir / name).read_bytes()[:8] == PNG_MAGIC, name
  saved = json.loads((workdir / 'metrics.json').read_text())
  assert saved['epochs'] == 6 and len(saved['history']) == 6
  for split in ('validation', 'test'):
    report = saved[split]
    assert report['num_examples'] == fake_datasets.SPLIT_SIZES[split]
    assert set(report['per_class']) == {'GALAXY', 'QSO', 'STAR'}
    assert set(report['per_class']['QSO']) == {'precision', 'recall', 'f1',
                                               'support'}
    assert np.array(report['confusion_matrix']).shape == (3, 3)
    assert 0 <= report['macro_f1'] <= 1
  for key in ('wall_time_s', 'train_images_per_s', 'flags', 'precision'):
    assert saved[key] is not None, key
  assert saved['flags']['model'] == 'mobilenet'
  # Emulator-built data says so in the metrics (and the plots' titles).
  assert saved['data_source'] == 'simulated (skytfds emulator)'
  assert saved['provenance']['simulated'] is True
  assert saved['cache_features'] is True
  assert saved['calibration'] == 'batch_norm'
  assert saved['calibrated_layers'] == 27
  assert {s['status'] for s in saved['features'].values()} == {'computed'}
  assert (workdir / 'features' / 'train.npz').is_file()
  # The class signal of the fake data is learnable from a random backbone.
  assert result['validation']['accuracy'] >= 0.6


def test_cached_and_streaming_training_agree(data_dir, cached_run, tmp_path):
  _, cached = cached_run
  streamed = train.run(config(data_dir, tmp_path, cache_features='off'))
  assert streamed['cache_features'] is False and streamed['features'] == {}
  # Same embeddings, same batches: the same head up to float noise.
  assert abs(streamed['validation']['accuracy']
             - cached['validation']['accuracy']) <= 2 / 18 + 1e-9
  cached_losses = [row['val_loss'] for row in cached['history']]
  streamed_losses = [row['val_loss'] for row in streamed['history']]
  np.testing.assert_allclose(streamed_losses, cached_losses, rtol=0.05)


def test_rerun_resumes_after_the_last_completed_epoch(data_dir, tmp_path):
  first = train.run(config(data_dir, tmp_path, epochs=1, cache_features='on'))
  assert first['epochs_run'] == {'head': 1}
  second = train.run(config(data_dir, tmp_path, epochs=2, cache_features='on'))
  assert second['resumed_from_epoch'] == {'head': 1}
  assert second['epochs_run'] == {'head': 1}  # only the missing epoch ran
  assert [row['epoch'] for row in second['history']] == [1, 2]
  assert second['history'][0] == first['history'][0]
  assert {s['status'] for s in second['features'].values()} == {'reused'}
  third = train.run(config(data_dir, tmp_path, epochs=2, cache_features='on'))
  assert third['epochs_run'] == {'head': 0}


def test_interrupted_streaming_run_resumes(data_dir, tmp_path, monkeypatch):
  calls = []
  original = checkpoints.EpochCheckpoint.on_epoch_end

  def stop_after_first_epoch(self, epoch, logs=None):
    original(self, epoch, logs)
    calls.append(epoch)
    if epoch == 0:
      raise KeyboardInterrupt  # killed during the second epoch

  monkeypatch.setattr(checkpoints.EpochCheckpoint, 'on_epoch_end',
                      stop_after_first_epoch)
  with pytest.raises(KeyboardInterrupt):
    train.run(config(data_dir, tmp_path, epochs=2, cache_features='off'))
  monkeypatch.setattr(checkpoints.EpochCheckpoint, 'on_epoch_end', original)
  state = json.loads((tmp_path / 'checkpoints/head/state.json').read_text())
  assert state['epoch'] == 1
  resumed = train.run(config(data_dir, tmp_path, epochs=2,
                             cache_features='off'))
  assert resumed['resumed_from_epoch'] == {'head': 1}
  assert resumed['epochs_run'] == {'head': 1}
  assert resumed['epochs'] == 2


def test_changed_dataset_is_not_served_from_the_cache(data_dir, tmp_path,
                                                      capfd):
  train.run(config(data_dir, tmp_path, epochs=1, cache_features='on'))
  # The backbone pass shows its progress (batches of 8: 36 train images).
  assert 'embedding train (mobilenet): 100%' in capfd.readouterr().err
  key_path = tmp_path / 'features' / 'train.json'
  key = json.loads(key_path.read_text())
  key['sha256'] = 'from another build of the dataset'
  key_path.write_text(json.dumps(key))
  result = train.run(config(data_dir, tmp_path, epochs=1, cache_features='on'))
  assert result['features']['train']['status'] == 'computed'
  assert result['features']['validation']['status'] == 'reused'
  # The finished head was fitted to the old embeddings: it trains again.
  assert result['resumed_from_epoch'] == {'head': 0}
  assert result['epochs_run'] == {'head': 1}


def test_stamp_dataset_trains_with_chosen_bands(data_dir, tmp_path):
  result = train.run(config(data_dir, tmp_path, dataset='fake_sdss_filters',
                            epochs=2, bands='gri'))
  assert result['flags']['bands'] == 'gri'
  assert result['test']['num_examples'] == 18
  run_config = json.loads((tmp_path / 'run_config.json').read_text())
  assert run_config['image_feature'] == 'stamp'


@pytest.fixture(scope='module')
def ugriz_run(data_dir, tmp_path_factory):
  workdir = tmp_path_factory.mktemp('ugriz')
  return workdir, train.run(config(data_dir, workdir, dataset='fake_sdss_filters',
                                   model='ugriz_cnn', epochs=8))


def test_ugriz_cnn_trains_every_layer_on_all_five_bands(ugriz_run):
  workdir, result = ugriz_run
  assert result['epochs_run'] == {'model': 8}
  assert result['cache_features'] is False and result['features'] == {}
  assert result['calibration'] is None
  run_config = json.loads((workdir / 'run_config.json').read_text())
  assert run_config['input'] == 'native'
  model = models.load_classifier(workdir / 'model.keras')
  assert model.input_shape == (None, 64, 64, 6)  # ugriz and the padding mask
  assert all(w.trainable for w in model.weights
             if 'moving' not in w.path and 'seed_generator' not in w.path)
  # Flux stamps are dimmed while training, by the flag's default.
  assert model.get_layer('ugriz_cnn_features').get_layer('augment').max_dim_mag == run_config['dim_max_mag'] > 0
  # The fake classes differ in size and colour, which five bands show.
  assert result['test']['accuracy'] >= 0.6, result['test']


def test_ugriz_cnn_resumes_evaluates_and_predicts(data_dir, ugriz_run, tmp_path):
  workdir, result = ugriz_run
  again = train.run(config(data_dir, workdir, dataset='fake_sdss_filters',
                           model='ugriz_cnn', epochs=8))
  assert again['epochs_run'] == {'model': 0}
  report = evaluate_lib.evaluate(str(workdir), split='test')
  assert report['confusion_matrix'] == result['test']['confusion_matrix']
  stamp = np.zeros((64, 64, 5), np.float32)
  stamp[30:34, 30:34] = [0.5, 6.0, 10.0, 4.0, 2.0]
  np.save(tmp_path / 'star.npy', stamp)
  [row] = predict_lib.predict(str(workdir), [predict_lib.Target(
      name='star', image_path=str(tmp_path / 'star.npy'))])
  assert abs(row['GALAXY'] + row['QSO'] + row['STAR'] - 1) < 1e-5
  with pytest.raises(trainer_flags.RunError, match='dataset of the same kind'):
    evaluate_lib.evaluate(str(workdir), dataset='fake_sdss_cutouts',
                          data_dir=str(data_dir), split='test')


def test_ugriz_cnn_also_reads_colour_images(data_dir, tmp_path):
  result = train.run(config(data_dir, tmp_path, model='ugriz_cnn', epochs=1))
  assert result['epochs_run'] == {'model': 1}
  model = models.load_classifier(tmp_path / 'model.keras')
  assert model.input_shape == (None, 64, 64, 4)  # R, G, B and padding
  assert model.get_layer('ugriz_cnn_features').get_layer('augment').max_dim_mag == 0.0  # stretched: never dimmed


@pytest.mark.parametrize('args, message', [
    ((), 'no ImageNet weights: pass --weights=none'),
    (('--weights=none', '--cache_features=on'), 'drop --cache_features=on'),
    (('--weights=none', '--fine_tune_layers=2'), 'drop --fine_tune_layers'),
])
def test_ugriz_cnn_refuses_backbone_only_flags(args, message):
  with pytest.raises(flags.IllegalFlagValueError, match=message):
    parse_train_flags('--model=ugriz_cnn', *args)


def test_dimming_flag_is_for_ugriz_cnn_only():
  fv = parse_train_flags('--model=ugriz_cnn', '--weights=none', '--dim_max_mag=0')
  assert trainer_flags.TrainConfig.from_flags(fv).dim_max_mag == 0.0
  with pytest.raises(flags.IllegalFlagValueError,
                     match='--dim_max_mag is a ugriz_cnn augmentation'):
    parse_train_flags('--model=vgg16', '--dim_max_mag=1')


def test_fine_tune_stage_streams_after_the_head(data_dir, tmp_path):
  result = train.run(config(data_dir, tmp_path, epochs=1, fine_tune_layers=4,
                            fine_tune_epochs=1, cache_features='auto'))
  assert result['cache_features'] is False  # auto: off when fine-tuning
  assert result['epochs_run'] == {'head': 1, 'fine_tune': 1}
  assert [row['stage'] for row in result['history']] == ['head', 'fine_tune']
  assert [row['epoch'] for row in result['history']] == [1, 2]


def test_same_seed_repeats_bit_for_bit(data_dir, tmp_path):
  # Each run in its own process, as a user's reruns would be: the seed must
  # fix the random backbone, its calibration images, shuffling and the head.
  def metrics(name, seed):
    workdir = tmp_path / name
    subprocess.run(
        [sys.executable, '-m', 'trainers.train', '--dataset=fake_sdss_filters',
         f'--data_dir={data_dir}', f'--workdir={workdir}', '--model=mobilenet',
         '--weights=none', '--epochs=2', '--batch_size=8', f'--seed={seed}',
         '--cache_features=off'],
        cwd=REPO, check=True, capture_output=True, timeout=300,
        env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
    return json.loads((workdir / 'metrics.json').read_text())

  def curves(result):
    return {key: [row[key] for row in result['history']]
            for key in ('loss', 'val_loss', 'accuracy', 'val_accuracy')}

  first, again, other = metrics('first', 3), metrics('again', 3), metrics('other', 4)
  assert curves(first) == curves(again)
  for split in ('validation', 'test'):
    assert first[split] == again[split], split
  assert curves(first)['loss'] != curves(other)['loss']  # The seed matters.


def test_workdir_of_another_run_is_refused(data_dir, cached_run):
  workdir, _ = cached_run
  with pytest.raises(trainer_flags.RunError,
                     match="holds another run .model 'mobilenet' -> 'vgg16'"):
    train.run(config(data_dir, workdir, model='vgg16'))


def test_dataset_not_built_names_the_build_command(tmp_path):
  with pytest.raises(input_pipeline.DatasetError) as error:
    train.run(config(tmp_path / 'empty', tmp_path / 'w'))
  assert str(error.value) == (
      f"dataset 'fake_sdss_cutouts' is not built under {tmp_path / 'empty'}; "
      f'build it with: tfds build fake_sdss_cutouts --imports=skytfds '
      f"--data_dir={tmp_path / 'empty'}")


def test_build_command_names_dataset_config_and_data_dir():
  assert input_pipeline.build_command('sdss_rgb/tiny', '/data') == (
      'tfds build sdss_rgb/tiny --imports=skytfds --data_dir=/data')


def test_mirrored_strategy_trains(data_dir, tmp_path):
  result = train.run(config(data_dir, tmp_path, epochs=1, strategy='mirrored',
                            cache_features='on'))
  assert result['epochs_run'] == {'head': 1}
  assert result['flags']['strategy'] == 'mirrored'


def test_weights_of_another_backbone_are_refused(data_dir, tmp_path):
  path = tmp_path / 'vgg16.weights.h5'
  models.build_application('vgg16', weights='none').save_weights(path)
  with pytest.raises(models.ModelError, match='does not match mobilenet'):
    train.run(config(data_dir, tmp_path / 'w', weights=str(path)))
  # The failed first try left no empty workdir behind...
  assert not (tmp_path / 'w').exists()
  # ...but never removes a folder the user made.
  (tmp_path / 'mine').mkdir()
  with pytest.raises(models.ModelError, match='does not match mobilenet'):
    train.run(config(data_dir, tmp_path / 'mine', weights=str(path)))
  assert (tmp_path / 'mine').is_dir()


# --- evaluate and predict --------------------------------------------------

def test_evaluate_rewrites_metrics_for_any_split(cached_run):
  workdir, result = cached_run
  (workdir / 'confusion.png').unlink()
  report = evaluate_lib.evaluate(str(workdir), split='validation')
  # The full model over images agrees with the head over cached embeddings.
  assert report['accuracy'] == pytest.approx(result['validation']['accuracy'],
                                             abs=1 / 18)
  # Every fake object has r = 17.5: one bin holds the whole split.
  assert report['by_r_mag']['r < 19'] == {
      'n': 18, 'accuracy': report['accuracy'],
      'stderr': pytest.approx(np.sqrt(report['accuracy'] * (1 - report['accuracy']) / 18))}
  assert all(report['by_r_mag'][b]['n'] == 0 for b in ('19-21', '21-22', 'r > 22'))
  report = evaluate_lib.evaluate(str(workdir), split='train')
  saved = json.loads((workdir / 'metrics.json').read_text())
  assert saved['train']['num_examples'] == 36
  assert 'fake_sdss_cutouts:train' in saved['evaluations']
  assert (workdir / 'confusion.png').read_bytes()[:8] == PNG_MAGIC
  with pytest.raises(input_pipeline.DatasetError, match='no split .dev.'):
    evaluate_lib.evaluate(str(workdir), split='dev')


def test_predict_local_images_in_every_format(cached_run, tmp_path):
  workdir, _ = cached_run
  paths = []
  for label in range(3):
    path = tmp_path / f'{fake_datasets.CLASSES[label]}.jpg'
    path.write_bytes(fake_datasets.cutout_jpeg(label, seed=99 + label))
    paths.append(str(path))
  targets = [predict_lib.Target(name=p, image_path=p) for p in paths]
  rows = predict_lib.predict(str(workdir), targets)
  assert [row['name'] for row in rows] == paths
  for row in rows:
    total = row['GALAXY'] + row['QSO'] + row['STAR']
    assert total == pytest.approx(1.0, abs=1e-4)
    assert row['class'] in fake_datasets.CLASSES
  table = predict_lib.format_rows(rows, 'table').splitlines()
  assert table[0].split() == ['name', 'ra', 'dec', 'GALAXY', 'QSO', 'STAR',
                              'class']
  assert len(table) == 4
  assert predict_lib.format_rows(rows, 'csv').splitlines()[0] == (
      'name,ra,dec,GALAXY,QSO,STAR,class')
  assert json.loads(predict_lib.format_rows(rows, 'json')) == rows


OBJID = 1237645879579967591  # run 94, rerun 301, camcol 6, field 535


def predict_catalog_error(text: str) -> str:
  with pytest.raises(catalog.CatalogError) as error:
    predict_lib.read_targets(text.encode('utf-8'), 'objects.csv')
  return str(error.value)


def test_predict_catalog_errors_name_the_line():
  # Read by the builds' catalogue parser, unlabelled (no class column).
  targets = predict_lib.read_targets(
      f'name,ra,dec,objid\na,180.5,-1.25,{OBJID}\n,10,20,\n'.encode(),
      'objects.csv')
  assert [(t.name, t.ra, t.dec, t.objid, t.frame) for t in targets] == [
      ('a', 180.5, -1.25, OBJID, catalog.FrameId(94, 301, 6, 535)),
      ('line 3', 10.0, 20.0, 0, None)]
  assert predict_catalog_error('ra,dec\n1,2\n400,2\n') == (
      'objects.csv: 1 problem(s) in the catalogue; fix them and load it '
      "again:\n  line 3, column ra: '400' is outside [0, 360) degrees; give ra "
      'in decimal degrees within [0, 360) degrees.')
  assert predict_catalog_error('x,y\n1,2\n').startswith(
      'objects.csv: missing required column(s): ra, dec. Required: ra, dec '
      '(degrees)')
  # An id that is not a PhotoObj objID would fetch a frame that is not there.
  assert ("line 2, column objid: '7' does not encode an SDSS imaging object"
          in predict_catalog_error('ra,dec,objid\n180.5,-1.25,7\n'))
  assert "line 2, column ra: '5_4.9' is not a number" in predict_catalog_error(
      'ra,dec\n5_4.9,1\n')


def test_predict_catalog_gives_frames_and_keeps_every_row():
  targets = predict_lib.read_targets(
      b'ra,dec,run,camcol,field,class\n229.4,42.8,3918,3,213,STAR\n'
      b'229.4,42.8,3918,3,213,\n', 'objects.csv')
  assert [(t.name, t.frame) for t in targets] == [
      ('line 2', catalog.FrameId(3918, 301, 3, 213)),
      ('line 3', catalog.FrameId(3918, 301, 3, 213))]
  assert predict_lib._frame_of(targets[0]) == (3918, 301, 3, 213)
  (target,) = predict_lib.read_targets(
      f'[{{"ra": 54.9, "dec": 1.2, "objid": {OBJID}}}]', 'objects.json')
  assert (target.name, target.frame) == ('row 1', (94, 301, 6, 535))
  (target,) = predict_lib.read_targets(b'ra,dec\n1,2\n', 'objects.csv')
  with pytest.raises(trainer_flags.RunError, match='the frame is unknown'):
    predict_lib._frame_of(target)


def test_predict_command_line_bad_catalogue_is_one_clear_error(tmp_path):
  path = tmp_path / 'objects.csv'
  path.write_bytes('name,ra,dec\na,５４.9,1.2\nb,54.9,91\n'.encode())
  process = subprocess.run(
      [sys.executable, '-m', 'trainers.predict', f'--workdir={tmp_path}',
       f'--catalog={path}'], cwd=REPO, capture_output=True, text=True,
      timeout=120, env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
  assert process.returncode == 1
  assert 'Traceback' not in process.stderr
  lines = process.stderr.splitlines()
  start = lines.index(f'predict: error: {path}: 2 problem(s) in the '
                      'catalogue; fix them and load it again:')
  assert lines[start + 1:start + 3] == [
      "  line 2, column ra: '５４.9' is not a number (it holds '５', FULLWIDTH "
      'DIGIT FIVE: write numbers in the ASCII digits 0-9, with an optional '
      'sign, point and exponent); give decimal degrees (not sexagesimal '
      'h:m:s / d:m:s).',
      "  line 3, column dec: '91' is outside [-90, 90] degrees; give dec in "
      'decimal degrees within [-90, 90] degrees.']


# --- flags -----------------------------------------------------------------

def parse_train_flags(*args: str) -> flags.FlagValues:
  fv = flags.FlagValues()
  trainer_flags.define_train_flags(fv)
  fv(['train', '--dataset=sdss_cutouts/tiny', '--workdir=/tmp/w', *args])
  return fv


def test_train_flags_parse_into_a_config():
  fv = parse_train_flags('--model=xception', '--weights=none',
                         '--batch_size=4', '--bands=gri')
  config_ = trainer_flags.TrainConfig.from_flags(fv)
  assert (config_.model, config_.weights, config_.batch_size,
          config_.bands) == ('xception', 'none', 4, 'gri')
  assert config_.mixed_precision == 'auto' and config_.cache_features == 'auto'


@pytest.mark.parametrize('arg, message', [
    ('--model=resnet18',
     'value should be one of <mobilenet|resnet50|vgg16|xception|ugriz_cnn>'),
    ('--batch_size=0', 'batch size must be at least 1, got 0'),
    ('--weights=/no/such/file.h5', "weights file '/no/such/file.h5' not found"),
    ('--bands=irx', 'three distinct letters'),
    ('--mixed_precision=fp8', 'value should be one of'),
    ('--dataset=../etc', 'is not a dataset name'),
])
def test_invalid_train_flags_fail_with_one_clear_message(arg, message):
  with pytest.raises(flags.IllegalFlagValueError, match=None) as error:
    parse_train_flags(arg)
  assert message in str(error.value)
  assert '\n' not in str(error.value)


def test_cache_on_with_augmentation_is_refused():
  with pytest.raises(flags.IllegalFlagValueError,
                     match='drop --augment or use --cache_features=off'):
    parse_train_flags('--cache_features=on', '--augment')


def test_command_line_error_is_one_line_without_traceback(tmp_path):
  process = subprocess.run(
      [sys.executable, '-m', 'trainers.train', '--dataset=fake_sdss_nothing',
       f'--data_dir={tmp_path}', f'--workdir={tmp_path / "w"}',
       '--weights=none'],
      cwd=REPO, capture_output=True, text=True, timeout=120,
      env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
  assert process.returncode == 1
  assert 'Traceback' not in process.stderr
  errors = [line for line in process.stderr.splitlines()
            if line.startswith('train: error:')]
  assert errors == [
      "train: error: dataset 'fake_sdss_nothing' is unknown (Dataset "
      'fake_sdss_nothing not found.); skytfds datasets are sdss_filters, '
      'sdss_rgb, sdss_cutouts, ps1_cutouts, each with configs tiny, small, '
      'full, tiny_dense, small_dense, full_dense, custom (e.g. '
      'sdss_rgb/tiny)']


# --- predict through the service clients, against the local emulator -------

def workdir_for(dataset: str, trained: pathlib.Path, target: pathlib.Path
                ) -> pathlib.Path:
  """A copy of a trained run's model and config, relabelled as `dataset`."""
  target.mkdir()
  (target / 'model.keras').write_bytes((trained / 'model.keras').read_bytes())
  run_config = json.loads((trained / 'run_config.json').read_text())
  run_config['dataset'] = dataset
  (target / 'run_config.json').write_text(json.dumps(run_config))
  return target


@pytest.fixture
def emulator(monkeypatch):
  from skytfds.emulator import app as app_lib
  from skytfds.emulator import catalogs
  from skytfds.emulator import sky as sky_lib
  catalog = catalogs.load_catalog(None)
  with app_lib.EmulatorThread(sky_lib.Sky(catalog, seed=0)) as emu:
    for name, value in emu.environ().items():
      monkeypatch.setenv(name, value)
    yield catalog, emu


@pytest.mark.network
def test_predict_fetches_sdss_cutouts_through_skyserver(cached_run, emulator,
                                                        tmp_path):
  catalog, emu = emulator
  workdir = workdir_for('sdss_cutouts/tiny', cached_run[0], tmp_path / 'w')
  objects = catalog.objects[:2]
  targets = [predict_lib.Target(name=str(o.objid), ra=o.ra, dec=o.dec)
             for o in objects]
  rows = predict_lib.predict(str(workdir), targets, cache_dir=tmp_path / 'c')
  assert [row['name'] for row in rows] == [str(o.objid) for o in objects]
  assert all(abs(r['GALAXY'] + r['QSO'] + r['STAR'] - 1) < 1e-4 for r in rows)
  assert emu.stats()['requests'] == 2  # one getjpeg cutout per object
  again = predict_lib.predict(str(workdir), targets, cache_dir=tmp_path / 'c')
  assert again == rows
  assert emu.stats()['requests'] == 2  # served from the fetch cache


@pytest.mark.slow
@pytest.mark.network
def test_predict_cuts_sdss_filters_stamps_from_sas_frames(data_dir, emulator,
                                                          tmp_path):
  catalog, _ = emulator
  trained = tmp_path / 'trained'
  train.run(config(data_dir, trained, dataset='fake_sdss_filters', epochs=1))
  workdir = workdir_for('sdss_filters/tiny', trained, tmp_path / 'w')
  target = catalog.objects[0]
  rows = predict_lib.predict(
      str(workdir), [predict_lib.Target(name='a', ra=target.ra, dec=target.dec,
                                        objid=target.objid)],
      cache_dir=tmp_path / 'c')
  assert rows[0]['class'] in fake_datasets.CLASSES
  with pytest.raises(trainer_flags.RunError, match='the frame is unknown'):
    predict_lib.predict(str(workdir), [predict_lib.Target(
        name='b', ra=target.ra, dec=target.dec)], cache_dir=tmp_path / 'c')


def test_results_table_lists_each_run_of_a_config(cached_run, tmp_path):
  sys.path.insert(0, str(REPO / 'tools'))
  try:
    import results_table  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.pop(0)
  workdir, result = cached_run
  runs = tmp_path / 'runs'
  for model in ('vgg16', 'mobilenet'):  # written out of order
    (runs / f'{model}_fake').mkdir(parents=True)
    metrics = {**json.loads((workdir / 'metrics.json').read_text()),
               'model': model}
    (runs / f'{model}_fake' / 'metrics.json').write_text(json.dumps(metrics))
  lines = results_table.table(runs).splitlines()
  assert len(lines) == 4 and lines[0].startswith('| model | dataset |')
  assert lines[2].startswith('| mobilenet | fake_sdss_cutouts |')
  assert lines[3].startswith('| vgg16 | fake_sdss_cutouts |')
  cells = [c.strip() for c in lines[2].strip('|').split('|')]
  assert cells[2] == 'simulated (skytfds emulator)'
  assert cells[3] == '/'.join(str(fake_datasets.SPLIT_SIZES[s])
                              for s in ('train', 'validation', 'test'))
  assert float(cells[5]) == pytest.approx(result['test']['accuracy'], abs=1e-3)
  assert float(cells[6]) == pytest.approx(result['test']['macro_f1'], abs=1e-3)
  # Another config's runs are left out.
  assert len(results_table.table(runs, config='small').splitlines()) == 2


def test_demo_reuses_only_a_finished_run_of_the_same_dataset_and_epochs(
    cached_run, tmp_path):
  sys.path.insert(0, str(REPO / 'tools'))
  try:
    import demo  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.pop(0)
  workdir, result = cached_run
  dataset, epochs = result['dataset'], result['flags']['epochs']
  assert demo.finished(workdir, dataset, epochs)
  assert not demo.finished(workdir, dataset, epochs + 1)
  assert not demo.finished(workdir, 'other/small', epochs)
  assert not demo.finished(tmp_path, dataset, epochs)  # no metrics.json
  (tmp_path / 'metrics.json').write_text('{"trunc')  # interrupted write
  assert not demo.finished(tmp_path, dataset, epochs)
