"""The bioimnb Jupyter server extension: REST handlers under ``{base_url}bioimnb/``.

Enabled by ``etc/jupyter/jupyter_server_config.d/bioimnb.json`` (shipped in the wheel) and found
through ``bioimnb._jupyter_server_extension_points``.
"""

from __future__ import annotations

from typing import Any

from .handlers import setup_handlers

__all__ = ["setup_handlers"]


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Register the bioimnb handlers with the server's tornado application."""
    from .locations import BioimnbConfig, setup_location_handlers

    setup_handlers(server_app.web_app)
    setup_location_handlers(server_app.web_app, BioimnbConfig(parent=server_app), server_app.log)
    server_app.log.info("bioimnb: server extension loaded")
