"""Sky dataset builder behind aladin_data.py: surveys (HiPS, FITS images), geometry, resampling, targets, writer.

Import the submodules you need; this package imports nothing heavy on its own.
"""
