"""The ``serve`` command: the local web app (API + page) under uvicorn.

Imported when the command runs; imports only click at import time (fastapi and
uvicorn are imported when the command runs), so ``modelmem --help`` stays fast.
"""

from __future__ import annotations

import click

from modelmem.errors import ModelMemError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_host(host: str) -> None:
    """An IP address or a host name, refused in one line before anything binds."""
    import ipaddress
    import re

    from modelmem.errors import InvalidValueError

    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    label = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
    if len(host) > 253 or not re.fullmatch(rf"{label}(\.{label})*", host):
        raise InvalidValueError("host", host, "not an IP address or host name")
    if re.fullmatch(r"[0-9.]+", host):  # dotted digits that are no IPv4 address: 300.1.1.1
        raise InvalidValueError("host", host, "not an IPv4 address")


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
@click.option(
    "--max-concurrency",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="API requests computed at once; more wait briefly, then get 503.",
)
def serve(host: str, port: int, allow_hub: bool, max_body: int, max_concurrency: int) -> None:
    """The local web app: the page at http://HOST:PORT/ and the JSON API under /api.

    Each API endpoint answers with the JSON of the matching command's --json; the
    OpenAPI schema is at /api/openapi.json. The app reads no file a request names, runs
    no model code, and fetches nothing unless --allow-hub. Needs the `web` extra.
    """
    check_host(host)
    _need_web()
    import uvicorn

    from modelmem.web.app import create_app

    if host not in LOOPBACK:
        click.echo(
            f"modelmem: warning: --host {host} serves other machines, and the API has no "
            "authentication: anyone who reaches this port can use it",
            err=True,
        )
    trusted = [*LOOPBACK, "[::1]"] if host in LOOPBACK else None
    app = create_app(
        allow_hub=allow_hub,
        max_body_bytes=max_body,
        trusted_hosts=trusted,
        max_concurrency=max_concurrency,
    )
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"modelmem: serving on http://{shown}:{port}/ (Ctrl-C stops)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
