"""Saves a grid of example images of a built dataset as PNG (`tfds.show_examples`).

  python tools/example_grid.py --dataset=sdss_rgb/tiny --data_dir=DIR --out=grid.png

sdss_filters stamps (ugriz floats) are shown as i,r,g with the same asinh
stretch the trainers feed the models (`input_pipeline.stamp_to_rgb`).
"""

import argparse

import matplotlib
matplotlib.use('Agg')
import tensorflow as tf  # pylint: disable=g-import-not-at-top
import tensorflow_datasets as tfds

import skytfds  # pylint: disable=unused-import  (registers the builders)
from skytfds import input_pipeline


def save_grid(dataset: str, data_dir: str, out: str, *, rows: int = 3,
              cols: int = 4, split: str = 'train') -> None:
  """Writes `rows` x `cols` labelled examples of `dataset` to the PNG `out`."""
  builder = tfds.builder(dataset, data_dir=data_dir)
  # A few examples are read: no autocache of the whole split (TF warns when
  # a partly read cache is dropped).
  ds = builder.as_dataset(split=split,
                          read_config=tfds.ReadConfig(try_autocache=False))
  info = builder.info
  if 'stamp' in info.features:
    ds = ds.map(lambda ex: {
        'image': tf.cast(tf.clip_by_value(
            input_pipeline.stamp_to_rgb(ex['stamp']), 0, 255), tf.uint8),
        'label': ex['label']})
    info = tfds.core.DatasetInfo(
        builder=builder, features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(None, None, 3)),
            'label': info.features['label']}))
  figure = tfds.show_examples(ds, info, rows=rows, cols=cols,
                              image_key='image', plot_scale=2.5)
  figure.savefig(out, dpi=80, bbox_inches='tight')


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--dataset', required=True, help='name/config, e.g. sdss_rgb/tiny')
  parser.add_argument('--data_dir', required=True)
  parser.add_argument('--out', required=True, help='PNG file to write')
  args = parser.parse_args()
  save_grid(args.dataset, args.data_dir, args.out)
  print(args.out)


if __name__ == '__main__':
  main()
