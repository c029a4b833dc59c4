"""The ps1_cutouts dataset."""
