"""The sdss_rgb dataset."""
