"""The local web app: an HTTP API that answers with the command line's ``--json``, and one
page over it.

Needs the ``web`` extra (fastapi, uvicorn). Started by ``modelmem serve``; the app itself
comes from :func:`modelmem.web.app.create_app`. Importing this package does not import
fastapi, so that the command line stays fast.
"""

from __future__ import annotations

__all__ = ["create_app"]

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelmem.web.app import create_app
else:

    def create_app(**kwargs: Any) -> Any:
        from modelmem.web.app import create_app as _create_app

        return _create_app(**kwargs)
