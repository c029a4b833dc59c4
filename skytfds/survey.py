"""Facts about the surveys, defined once: bands, classes, releases, pixel scales.

Pure values, no imports beyond the standard library, so every layer (the
clients, the builders, the trainers and the emulator) can share them without
importing each other.
"""

# SDSS imaging bands, in wavelength order (stamp channel order of sdss_filters).
BANDS = ('u', 'g', 'r', 'i', 'z')
# Spectroscopic classes, in ClassLabel order everywhere.
CLASSES = ('GALAXY', 'QSO', 'STAR')
# Data releases with the DR12+ schema that the queries and SAS paths use.
RELEASES = (12, 13, 14, 15, 16, 17)
DEFAULT_RELEASE = 17
# Processing rerun of the DR8+ imaging.
RERUN = 301
# SDSS frame pixel scale, arcsec per pixel.
SDSS_PIXEL_ARCSEC = 0.396
# Pan-STARRS 1 bands and native pixel scale (arcsec per pixel).
PS1_BANDS = ('g', 'r', 'i', 'z', 'y')
PS1_PIXEL_ARCSEC = 0.25
# Mean size of a real SDSS frame file (frame-<band>-...fits.bz2): 3.39 MB over
# the 15 real DR17 files in ../shared/data/sas (2.87-3.80 MB). Used to
# estimate a frame build's download before it starts.
FRAME_FILE_BYTES = 3_390_000
