"""Tornado handlers of the bioimnb server extension.

Every verb is ``@tornado.web.authenticated``: a server started with
``allow_unauthenticated_access=False`` warns about any handler that is not.
"""

from __future__ import annotations

from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

import bioimnb

#: Every route lives under ``{base_url}bioimnb/``.
NAMESPACE = "bioimnb"


class VersionHandler(APIHandler):
    """``GET {base_url}bioimnb/version`` -> ``{"version": "<bioimnb version>"}``."""

    @tornado.web.authenticated
    def get(self) -> None:
        self.finish({"version": bioimnb.__version__})


def setup_handlers(web_app: Any) -> None:
    """Add the bioimnb routes to ``web_app``, honouring the server's ``base_url``."""
    base_url = web_app.settings["base_url"]
    handlers: list[tuple[str, type[APIHandler]]] = [
        (url_path_join(base_url, NAMESPACE, "version"), VersionHandler),
    ]
    web_app.add_handlers(".*$", handlers)
