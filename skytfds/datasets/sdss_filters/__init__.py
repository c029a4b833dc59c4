"""The sdss_filters dataset."""
