r"""Class probabilities for objects on the sky (or local images), with a trained run.

  python -m trainers.predict --workdir=DIR --ra=180.1 --dec=0.5 [--objid=...]
  python -m trainers.predict --workdir=DIR --catalog=objects.csv --format=csv
  python -m trainers.predict --workdir=DIR --image=cutout.jpg   # or stamp.npy

The image is made the way the run's dataset (workdir/run_config.json) made
its training images, through the same service clients and product settings:
sdss_cutouts -> SkyServer getjpeg, ps1_cutouts -> Pan-STARRS fitscut,
sdss_filters / sdss_rgb -> SAS frames of the object's field (needs --objid, or
run/camcol/field, or objid columns in the catalogue), cut and stretched as
the builder does. Service locations come from the SKYTFDS_*_URL variables.

--catalog is read by the catalogue parser of the builds, in its unlabelled
mode (`catalog.parse_catalog(..., labelled=False)`): CSV or SkyServer JSON,
ra and dec required, class not needed, and every problem reported with its
file, line, column, value and what to do.
"""

import csv
import dataclasses
import io
import json
import os
import pathlib
import sys
from typing import Any, Sequence

from absl import app
from absl import flags
import numpy as np

from skytfds import catalog
from skytfds.catalog import objects as catalog_objects
from skytfds import input_pipeline
from skytfds import models
from skytfds import survey
from skytfds.datasets import context as context_lib
from skytfds.datasets import products
from skytfds.services import http
from trainers import flags as trainer_flags
from trainers import run_files

FLAGS = flags.FLAGS
FORMATS = ('table', 'csv', 'json')


@dataclasses.dataclass
class Target:
  """One object to classify: a position (degrees) and, for frames, its field.

  The field is `frame` when given, else the one `objid` encodes.
  """
  name: str
  ra: float | None = None
  dec: float | None = None
  objid: int = 0
  frame: catalog.FrameId | None = None
  image_path: str | None = None


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
  trainer_flags.define_workdir_flag(fv)
  flags.DEFINE_float('ra', None, 'Right ascension, degrees.', flag_values=fv)
  flags.DEFINE_float('dec', None, 'Declination, degrees.', flag_values=fv)
  flags.DEFINE_integer('objid', None, 'SDSS objid (gives the frame for '
                       'sdss_filters / sdss_rgb).', flag_values=fv)
  flags.DEFINE_string('catalog', None, 'CSV (or SkyServer JSON) with columns '
                      'ra, dec (degrees) and optionally name, objid, or run, '
                      f'camcol, field (rerun defaults to {survey.RERUN}); no '
                      'class needed.', flag_values=fv)
  flags.DEFINE_multi_string('image', [], 'Local PNG/JPEG file (image '
                            'datasets) or .npy ugriz stamp [H, W, 5] '
                            '(sdss_filters); repeatable.', flag_values=fv)
  flags.DEFINE_enum('format', 'table', list(FORMATS), 'Output format.',
                    flag_values=fv)
  flags.DEFINE_string('cache_dir', None, 'Fetch cache (default '
                      'WORKDIR/predict_cache).', flag_values=fv)
  flags.DEFINE_integer('release', survey.DEFAULT_RELEASE,
                       'SDSS data release of the images.',
                       flag_values=fv)
  flags.register_multi_flags_validator(
      ['ra', 'dec', 'catalog', 'image'],
      lambda d: trainer_flags.require(  # pylint: disable=protected-access
          (d['ra'] is not None and d['dec'] is not None) + bool(d['catalog'])
          + bool(d['image']) == 1 and (d['ra'] is None) == (d['dec'] is None),
          'give exactly one of --ra and --dec together, --catalog or --image'),
      flag_values=fv)


def read_targets(data: bytes | str, source: str) -> list[Target]:
  """Targets from a catalogue's bytes, one per row, in order.

  Read by the one catalogue parser, unlabelled: ra, dec (degrees); optional
  name (default 'line N'), objid, run, camcol, field, rerun.

  Raises:
    catalog.CatalogError: naming the file, line, column, value and what to do.
  """
  objects = catalog.parse_catalog(data, source, labelled=False).objects
  return [Target(name=obj.name or obj.source.removeprefix(f'{source} '),
                 ra=obj.ra, dec=obj.dec, objid=obj.objid,
                 frame=(None if obj.frame == catalog_objects.UNKNOWN_FRAME
                        else obj.frame))
          for obj in objects]


def _frame_of(target: Target) -> catalog.FrameId:
  if target.frame is not None:
    return target.frame
  if target.objid:
    return catalog.decode_objid(target.objid)
  raise trainer_flags.RunError(
      f'{target.name}: the frame is unknown; give --objid, or objid or '
      f'run, camcol, field columns in the catalogue')


async def _fetch_inputs(targets: Sequence[Target], dataset: str,
                        cache_dir: str, release: int) -> list[Any]:
  """Per target: JPEG bytes (cutouts), a ugriz stamp or a uint8 RGB image.

  Made by the dataset's own product (products.BY_DATASET), exactly as the
  builder made the training images.
  """
  product = products.BY_DATASET[dataset]
  services = context_lib.BuildContext(workdir=cache_dir, release=release)
  inputs = []
  async with http.Fetcher(cache_dir) as fetcher:
    for target in targets:
      if isinstance(product, products.CutoutProduct):
        data = await product.fetch(fetcher, target.ra, target.dec, services)
        try:
          inputs.append(product.example(data)['image'])
        except products.BadImage as e:
          raise trainer_flags.RunError(f'{target.name}: {e}') from None
        continue
      frame = _frame_of(target)
      band_bytes = {b: await product.fetch_band(fetcher, frame, b, services)
                    for b in product.bands}
      try:
        cut = product.cut(product.decode(band_bytes, frame), target.ra, target.dec)
      except (products.Skip, products.CorruptBand) as e:
        raise trainer_flags.RunError(
            f'{target.name}: no stamp in field {frame.name} ({e})') from None
      inputs.append(cut)  # the stamp and its mask, or the image
  return inputs


def model_input(value: Any, *, image_size: int, bands: str,
                native: bool = False) -> np.ndarray:
  """Bytes (PNG/JPEG), a ugriz stamp [H, W, 5], uint8 [H, W, 3], or a cut
  product's features ({'stamp', 'mask'} or {'image'}) -> the model's input.

  native: the native input of a from-scratch model (input_pipeline) rather
  than RGB in [0, 255].
  """
  mask = None
  if isinstance(value, dict):
    mask = value.get(input_pipeline.MASK_FEATURE)
    value = value.get(input_pipeline.STAMP_FEATURE,
                      value.get(input_pipeline.IMAGE_FEATURE))
  if isinstance(value, (bytes, bytearray)):
    if native:
      value = input_pipeline.decoded_image_from_bytes(bytes(value))
    else:
      return input_pipeline.image_from_bytes(bytes(value), image_size)
  value = np.asarray(value)
  if value.ndim == 3 and value.shape[-1] == len(input_pipeline.STAMP_BANDS):
    if native:
      return input_pipeline.native_from_stamp(value, mask, image_size).numpy()
    return input_pipeline.image_from_stamp(value, image_size, bands)
  if value.ndim == 3 and value.shape[-1] == 3:
    if native:
      return input_pipeline.native_from_image(value, image_size).numpy()
    return input_pipeline.resize(value, image_size).numpy()
  raise input_pipeline.DatasetError(
      f'image of shape {value.shape}: expected [H, W, 3] or a [H, W, 5] stamp')


def read_local(path: str) -> Any:
  """A local image file's bytes, or a .npy stamp (no pickle)."""
  try:
    if path.endswith('.npy'):
      return np.load(path, allow_pickle=False)
    return pathlib.Path(path).read_bytes()
  except (OSError, ValueError) as e:
    raise trainer_flags.RunError(f'{path}: cannot read ({e})') from None


def predict(workdir: str, targets: Sequence[Target], *,
            cache_dir: str | None = None, release: int = survey.DEFAULT_RELEASE
            ) -> list[dict[str, Any]]:
  """One row per target: name, ra, dec, a probability per class, the class."""
  run_config = trainer_flags.read_run_config(workdir)
  dataset = run_config['dataset'].split('/')[0]
  names = run_config['class_names']
  model_path = pathlib.Path(workdir) / run_files.MODEL_FILE
  if not model_path.exists():
    raise trainer_flags.RunError(
        f'{model_path} not found: the run has not finished; rerun '
        f'trainers.train with the same --workdir')
  remote = [t for t in targets if t.image_path is None]
  fetched = {}
  if remote:
    if dataset not in products.BY_DATASET:
      raise trainer_flags.RunError(
          f'the run was trained on {run_config["dataset"]}: predict fetches '
          f'images for {", ".join(products.BY_DATASET)} only; pass --image')
    cache_dir = cache_dir or os.path.join(workdir, 'predict_cache')
    values = http.run(_fetch_inputs(remote, dataset, cache_dir, release))
    fetched = {id(t): v for t, v in zip(remote, values)}
  model = models.load_classifier(model_path)
  size = model.input_shape[1]
  bands = run_config.get('bands', input_pipeline.DEFAULT_BANDS)
  native = run_files.reads_native_input(run_config)
  batch = np.stack([
      model_input(read_local(t.image_path) if t.image_path else fetched[id(t)],
                  image_size=size, bands=bands, native=native)
      for t in targets])
  if batch.shape[-1] != model.input_shape[-1]:
    raise trainer_flags.RunError(
        f'the model reads {model.input_shape[-1]} channels; these inputs '
        f'have {batch.shape[-1]}: give inputs like those of '
        f'{run_config["dataset"]}')
  probabilities = np.asarray(model.predict(batch, verbose=0), np.float64)
  rows = []
  for target, p in zip(targets, probabilities):
    row = {'name': target.name, 'ra': target.ra, 'dec': target.dec}
    row.update({name: float(value) for name, value in zip(names, p)})
    row['class'] = names[int(np.argmax(p))]
    rows.append(row)
  return rows


def format_rows(rows: Sequence[dict[str, Any]], fmt: str) -> str:
  """The rows as an aligned table, CSV or JSON."""
  if fmt == 'json':
    return json.dumps(list(rows), indent=2)
  columns = list(rows[0]) if rows else ['name', 'class']
  if fmt == 'csv':
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().rstrip('\n')

  def cell(value):
    if value is None:
      return '-'
    return f'{value:.4f}' if isinstance(value, float) else str(value)

  table = [columns] + [[cell(row[c]) for c in columns] for row in rows]
  widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
  return '\n'.join('  '.join(text.ljust(w) for text, w in zip(line, widths))
                   .rstrip() for line in table)


def targets_from_flags(fv: flags.FlagValues = FLAGS) -> list[Target]:
  if fv.image:
    return [Target(name=path, image_path=path) for path in fv.image]
  if fv.catalog:
    try:
      data = pathlib.Path(fv.catalog).read_bytes()
    except OSError as e:
      raise trainer_flags.RunError(f'{fv.catalog}: cannot read ({e})') from None
    return read_targets(data, fv.catalog)
  return [Target(name=f'{fv.ra:.6f} {fv.dec:+.6f}', ra=fv.ra, dec=fv.dec,
                 objid=fv.objid or 0)]


def main(argv):
  if len(argv) > 1:
    trainer_flags.exit_with_error('predict', f'unexpected arguments {argv[1:]}')
  try:
    rows = predict(FLAGS.workdir, targets_from_flags(), cache_dir=FLAGS.cache_dir,
                   release=FLAGS.release)
  except (input_pipeline.DatasetError, trainer_flags.RunError, http.FetchError,
          ValueError) as e:  # ValueError: FrameError, CatalogError, BadImage
    trainer_flags.exit_with_error('predict', e)
  print(format_rows(rows, FLAGS.format))
  sys.stdout.flush()


if __name__ == '__main__':
  define_flags()
  flags.adopt_module_key_flags(trainer_flags)  # --help lists --workdir too.
  app.run(main)
