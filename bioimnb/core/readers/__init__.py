"""Reader families (one module each): tiff, zarr_ngff, slide, bioio_formats.

Which reader opens what is decided by :mod:`bioimnb.core.registry`, not here.
"""
