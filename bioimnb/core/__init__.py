"""The shared core of bioimnb.

Everything a front end shows is computed here.  This package imports no UI or server
framework (ipywidgets, anywidget, IPython, tornado, jupyter_server); ``tests/test_architecture.py``
and the import-linter contract in ``pyproject.toml`` enforce that.
"""
