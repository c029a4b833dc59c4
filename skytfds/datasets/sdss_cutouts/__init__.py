"""The sdss_cutouts dataset."""
