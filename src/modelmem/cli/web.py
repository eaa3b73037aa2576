"""The ``serve`` command: the local web app (API + page) under uvicorn.

Imported when the command runs; imports only click at import time (fastapi and
uvicorn are imported when the command runs), so ``modelmem --help`` stays fast.
"""

from __future__ import annotations

import click

from modelmem.errors import ModelMemError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _need_web() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise ModelMemError(
            f"serve needs the web extra: pip install 'modelmem[web]' ({e.name} is missing)"
        ) from None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port."
)
@click.option(
    "--allow-hub",
    is_flag=True,
    help="Accept Hugging Face Hub repo ids as SOURCE (reads their config.json from the Hub).",
)
@click.option(
    "--max-body",
    type=click.IntRange(1024, 100_000_000),
    default=1_000_000,
    show_default=True,
    help="Largest request body in bytes.",
)
def serve(host: str, port: int, allow_hub: bool, max_body: int) -> None:
    """The local web app: the page at http://HOST:PORT/ and the JSON API under /api.

    Each API endpoint answers with the JSON of the matching command's --json; the
    OpenAPI schema is at /api/openapi.json. The app reads no file a request names, runs
    no model code, and fetches nothing unless --allow-hub. Needs the `web` extra.
    """
    _need_web()
    import uvicorn

    from modelmem.web.app import create_app

    trusted = [*LOOPBACK, "[::1]"] if host in LOOPBACK else None
    app = create_app(allow_hub=allow_hub, max_body_bytes=max_body, trusted_hosts=trusted)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"modelmem: serving on http://{shown}:{port}/ (Ctrl-C stops)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
