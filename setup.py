"""skytfds: SDSS imaging as TensorFlow Datasets, and STAR/GALAXY/QSO classifiers."""

import pathlib
import re

import setuptools

_HERE = pathlib.Path(__file__).parent
_VERSION = re.search(
    r"__version__ = '([^']+)'", (_HERE / 'skytfds' / '__init__.py').read_text()
).group(1)

setuptools.setup(
    name='skytfds',
    version=_VERSION,
    description=(
        'TFDS builders for SDSS imaging (FITS stamps, colour stamps, SkyServer '
        'and Pan-STARRS cutouts) and frozen-backbone STAR/GALAXY/QSO trainers.'
    ),
    long_description=(_HERE / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    url='https://github.com/skytfds/skytfds',
    license='Apache-2.0',
    license_files=['LICENSE'],
    python_requires='>=3.10',
    packages=setuptools.find_packages(include=['skytfds', 'skytfds.*', 'trainers']),
    package_data={
        'skytfds.datasets': [
            '*/CITATIONS.bib', '*/README.md', '*/TAGS.txt', '*/examples.png',
            '*/dummy_data/**/*', '*/dummy_data/*',
        ],
    },
    install_requires=[
        'tensorflow>=2.16',
        'tensorflow-datasets>=4.9.4',
        # The `tfds` command line imports these, and pip does not pull them in.
        'mlcroissant',
        'importlib_resources',
        'astropy>=6.0',
        'numpy>=1.26',
        'scipy>=1.11',
        'fsspec>=2023.1',
        'aiohttp>=3.9',
        'absl-py>=1.4',
        'pillow>=10.0',
        'matplotlib>=3.8',
        'tensorboard',
    ],
    extras_require={
        'test': ['pytest>=8', 'pytest-timeout', 'pytest-xdist', 'dill'],  # dill: tfds.testing
        'beam': ['apache-beam>=2.50'],
        # A --download_dir (the caches) on a bucket: gs://, s3://.
        'gcs': ['gcsfs'],
        's3': ['s3fs'],
    },
    entry_points={
        'tfds.community_datasets': [],
    },
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Astronomy',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
