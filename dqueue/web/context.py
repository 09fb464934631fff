"""What every endpoint needs, kept on the app (``app.extensions["dqueue"]``), not in globals."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import Engine

from .. import config
from .auth import Tokens
from .settings import WebSettings


@dataclass(frozen=True)
class WebContext:
    engine: Engine
    settings: config.Settings
    web: WebSettings
    tokens: Tokens


def context() -> WebContext:
    """The context of the app serving the current request."""
    ctx: WebContext = current_app.extensions["dqueue"]
    return ctx
