"""Notebook widgets: thin front ends that translate user actions into core calls.

Modules load lazily (``bioimnb.view``, ``bioimnb.ConvertPanel``); importing this package pulls
in no widget library by itself.
"""
