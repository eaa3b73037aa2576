"""Hugging Face Hub repositories, through ``huggingface_hub``: config files and headers only.

``org/name`` (optionally ``org/name@revision``) fetches ``config.json`` (or, for an
adapter repo, ``adapter_config.json``) into the standard Hugging Face cache and reads the
safetensors headers with range requests; no weight is downloaded and no repository code
is run. The local cache is tried first, so a repo seen once keeps working offline;
``HF_HUB_OFFLINE=1`` and ``HF_TOKEN`` are honoured by ``huggingface_hub`` itself.

Every failure becomes one :class:`SourceError` line that says what to do: a gated repo
(accept its licence, set ``HF_TOKEN``), a missing or private repo, a missing file or
revision, no network.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from modelmem.errors import SourceError
from modelmem.model.sources import HUB_PREFIX

if TYPE_CHECKING:
    from huggingface_hub.utils._safetensors import SafetensorsRepoMetadata

# huggingface_hub's repo-id rule: namespace/name of letters, digits, '-', '_', '.'.
_REPO_ID: Final = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}")
_REVISION: Final = re.compile(r"[\w./-]{1,200}")
MAX_CONFIG_BYTES: Final = 5_000_000
# Every request to the Hub: a connection within HUB_CONNECT_TIMEOUT_S, each read within
# HUB_READ_TIMEOUT_S, and a whole repo read (config, then the safetensors headers of every
# shard) within HUB_DEADLINE_S. A network failure is not retried: huggingface_hub's
# backoff (1, 2, 4, 8, 8 s) would turn a dead proxy into half a minute of waiting.
HUB_CONNECT_TIMEOUT_S: Final = 4.0
HUB_READ_TIMEOUT_S: Final = 8.0
HUB_DEADLINE_S: Final = 30.0


class HubNetworkError(Exception):
    """The Hub could not be reached or did not answer in time (not an OSError, so that
    huggingface_hub's own fallbacks let it through)."""


_state = threading.local()  # the deadline of the repo read in progress on this thread
_installed: list[bool] = []


def hub_client(transport: Any = None) -> Any:
    """An HTTP client for huggingface_hub with modelmem's timeouts and deadline; a test
    passes a ``transport`` (httpx2.MockTransport) so that nothing touches the network."""
    import httpx2
    from huggingface_hub.utils._http import hf_request_event_hook

    bounded = httpx2.Timeout(
        HUB_READ_TIMEOUT_S, connect=HUB_CONNECT_TIMEOUT_S, pool=HUB_CONNECT_TIMEOUT_S
    )
    timeout = bounded.as_dict()

    class _BoundedClient(httpx2.Client):
        def send(self, request: Any, **kwargs: Any) -> Any:
            request.extensions["timeout"] = timeout  # over huggingface_hub's 10 s per call
            deadline = getattr(_state, "deadline", None)
            if deadline is not None and time.monotonic() > deadline:
                raise HubNetworkError(f"no complete answer within {HUB_DEADLINE_S:.0f} s")
            try:
                return super().send(request, **kwargs)
            except httpx2.TimeoutException as e:
                raise HubNetworkError(
                    f"no answer from {request.url.host} within the time allowed "
                    f"({HUB_CONNECT_TIMEOUT_S:.0f} s to connect, {HUB_READ_TIMEOUT_S:.0f} s "
                    f"to read; {type(e).__name__})"
                ) from None
            except httpx2.TransportError as e:
                raise HubNetworkError(
                    f"cannot reach {request.url.host} ({type(e).__name__}: {_first_line(e)})"
                ) from None

    kwargs: dict[str, Any] = {"transport": transport} if transport is not None else {}
    return _BoundedClient(
        event_hooks={"request": [hf_request_event_hook]},
        follow_redirects=True,
        timeout=bounded,
        **kwargs,
    )


def use_hub_transport(transport: Any = None) -> None:
    """Route huggingface_hub's requests through :func:`hub_client` (with ``transport``)."""
    from huggingface_hub import set_client_factory

    set_client_factory(lambda: hub_client(transport))
    _installed[:] = [True]


def _ensure_client() -> None:
    if not _installed:
        use_hub_transport()


@dataclass(frozen=True, slots=True)
class HubRef:
    repo_id: str
    revision: str | None = None

    def __str__(self) -> str:
        return self.repo_id + (f"@{self.revision}" if self.revision else "")


def parse_hub_ref(text: str) -> HubRef | None:
    """``org/name`` or ``org/name@rev`` (optionally after ``hf://``), else None."""
    body = text.removeprefix(HUB_PREFIX)
    repo, _, revision = body.partition("@")
    if not _REPO_ID.fullmatch(repo) or ".." in repo or repo.endswith((".", "-")):
        return None
    if revision and not _REVISION.fullmatch(revision):
        return None
    return HubRef(repo, revision or None)


@dataclass(frozen=True, slots=True)
class HubFiles:
    """What was read from one repo."""

    ref: HubRef
    config: dict[str, Any] | None  # config.json, None for an adapter-only repo
    adapter_config: dict[str, Any] | None
    safetensors: SafetensorsRepoMetadata | None
    notes: tuple[str, ...]


def read_hub_repo(ref: HubRef, *, cache_dir: Path | None = None) -> HubFiles:
    """config.json or adapter_config.json, and the safetensors headers, of one repo."""
    _ensure_client()
    _state.deadline = time.monotonic() + HUB_DEADLINE_S
    try:
        return _read_hub_repo(ref, cache_dir)
    finally:
        _state.deadline = None


def _read_hub_repo(ref: HubRef, cache_dir: Path | None) -> HubFiles:
    notes: list[str] = []
    config = _json_file(ref, "config.json", cache_dir, required=False)
    adapter = None
    if config is None:
        adapter = _json_file(ref, "adapter_config.json", cache_dir, required=False)
        if adapter is None:
            raise SourceError(str(ref), "the repo has neither config.json nor adapter_config.json")
    safetensors = None
    if config is not None:
        safetensors, note = _safetensors_metadata(ref)
        if note:
            notes.append(note)
    return HubFiles(ref, config, adapter, safetensors, tuple(notes))


def _json_file(
    ref: HubRef, filename: str, cache_dir: Path | None, *, required: bool
) -> dict[str, Any] | None:
    path = _download(ref, filename, cache_dir, required=required)
    if path is None:
        return None
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise SourceError(f"{ref}: {filename}", f"over the {MAX_CONFIG_BYTES:,}-byte cap")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise SourceError(f"{ref}: {filename}", f"not valid JSON ({type(e).__name__})") from None
    except ValueError:  # an integer of more digits than Python converts
        raise SourceError(
            f"{ref}: {filename}", "not valid JSON (an integer of over 4,300 digits)"
        ) from None
    if not isinstance(data, dict):
        raise SourceError(f"{ref}: {filename}", "not a JSON object")
    return data


def _download(ref: HubRef, filename: str, cache_dir: Path | None, *, required: bool) -> Path | None:
    """The cached file, fetched if needed; None when the repo lacks it and it is optional."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    kwargs: dict[str, Any] = {"revision": ref.revision, "cache_dir": cache_dir}
    try:  # offline first: a file seen once needs no network
        return Path(hf_hub_download(ref.repo_id, filename, local_files_only=True, **kwargs))
    except (LocalEntryNotFoundError, EntryNotFoundError, OSError):
        pass
    except Exception as e:
        raise _hub_error(ref, filename, e) from None
    unreachable = endpoint_unreachable()
    if unreachable:
        raise SourceError(
            f"{ref} (Hugging Face Hub)",
            f"{filename} is not in the local cache and {unreachable} (no network? "
            "HF_HUB_OFFLINE=1 uses the cache only)",
        )
    try:
        return Path(hf_hub_download(ref.repo_id, filename, **kwargs))
    except Exception as e:
        if not required and _is_missing_entry(e):
            return None
        raise _hub_error(ref, filename, e) from None


_PROXY_VARIABLES: Final = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")


def endpoint_unreachable() -> str | None:
    """Why the Hub's host cannot be reached, when a name lookup says so at once; None
    otherwise. Without this, huggingface_hub retries a dead network for about 20 s before
    its error. Behind a proxy the name is the proxy's to resolve, so nothing is checked."""
    import os
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return None
    host = urlparse(constants.ENDPOINT).hostname
    if not host:
        return None
    # in a thread, so that a resolver that never answers costs HUB_CONNECT_TIMEOUT_S only
    failed: list[bool] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, 443)
            failed.append(False)
        except OSError:  # socket.gaierror: no resolver, no network
            failed.append(True)

    thread = threading.Thread(target=lookup, daemon=True)
    thread.start()
    thread.join(HUB_CONNECT_TIMEOUT_S)
    if not failed:
        return f"the Hub's host {host} did not resolve within {HUB_CONNECT_TIMEOUT_S:.0f} s"
    return f"the Hub's host {host} cannot be resolved" if failed[0] else None


def _is_missing_entry(e: Exception) -> bool:
    from huggingface_hub.errors import LocalEntryNotFoundError, RemoteEntryNotFoundError

    return isinstance(e, RemoteEntryNotFoundError) and not isinstance(e, LocalEntryNotFoundError)


def _safetensors_metadata(ref: HubRef) -> tuple[SafetensorsRepoMetadata | None, str | None]:
    """Headers by range requests; offline or a repo without safetensors gives a note."""
    from huggingface_hub import constants, get_safetensors_metadata
    from huggingface_hub.errors import NotASafetensorsRepoError

    if constants.is_offline_mode():
        return None, "safetensors headers not read: HF_HUB_OFFLINE is set"
    try:
        return get_safetensors_metadata(ref.repo_id, revision=ref.revision), None
    except NotASafetensorsRepoError:
        return None, "the repo has no safetensors weights: counts come from config.json"
    except Exception as e:
        raise _hub_error(ref, "safetensors headers", e) from None


def _hub_error(ref: HubRef, what: str, e: Exception) -> SourceError:
    """One line that says what happened and what to do."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
        SafetensorsParsingError,
    )

    where = f"{ref} (Hugging Face Hub)"
    if isinstance(e, HubNetworkError):
        problem = f"{what}: {e} (no network? HF_HUB_OFFLINE=1 uses the cache only)"
    elif isinstance(e, GatedRepoError):
        problem = "gated repo: accept its licence on the Hub, then set HF_TOKEN"
    elif isinstance(e, RepositoryNotFoundError):
        problem = "no such repo, or it is private (set HF_TOKEN to a token with access)"
    elif isinstance(e, RevisionNotFoundError):
        problem = f"no such revision {ref.revision!r}"
    elif isinstance(e, RemoteEntryNotFoundError):
        problem = f"the repo has no {what}"
    elif isinstance(e, OfflineModeIsEnabled | LocalEntryNotFoundError):
        problem = (
            f"{what} is not in the local cache and the Hub cannot be reached "
            "(no network, or HF_HUB_OFFLINE=1)"
        )
    elif isinstance(e, SafetensorsParsingError):
        problem = f"unreadable safetensors header: {_first_line(e)}"
    elif isinstance(e, HFValidationError):
        problem = f"not a valid repo id: {_first_line(e)}"
    else:
        problem = f"{what}: {type(e).__name__}: {_first_line(e)}"
    return SourceError(where, problem)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
