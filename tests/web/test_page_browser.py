"""The page as a person uses it: headless Chromium against the app on a loopback port.

Needs the Python package playwright and a Chromium binary (the Debian `chromium` package);
nothing is downloaded. Skipped when either is missing.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from modelmem.web.app import create_app  # noqa: E402

from ..conftest import load_fixture  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="the chromium package is not installed"
)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # a refused request (4xx) logs "Failed to load resource"; the page shows it as an error
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(base_url) else outside.append(r.url))
    page.goto(base_url + "/")
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)
    yield page
    context.close()
    assert errors == [], errors
    assert outside == [], f"the page fetched from another origin: {outside}"


def api(base_url: str, path: str, body: dict[str, Any]) -> Any:
    response = httpx.post(base_url + path, json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def settle(page: Any) -> None:
    """Wait for the answer to the latest change (the page debounces, then fetches)."""
    page.wait_for_selector("body[data-state=busy]", state="detached", timeout=20_000)
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)


def shown_bytes(page: Any) -> int:
    text: str = page.inner_text("#total-bytes")
    assert text.endswith(" bytes")
    return int(text.removesuffix(" bytes").replace(",", ""))


def assert_chart_drawn(page: Any, chart: str, points: int) -> None:
    box = page.locator(f"{chart} path.line").bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 1
    assert page.locator(f"{chart} circle.dot").count() == points


def test_inference_total_bar_verdict_and_charts_equal_the_api(page: Any, base_url: str) -> None:
    page.select_option("#model", "qwen2.5-7b")
    page.select_option("#dtype", "fp8-e4m3")
    page.fill("#batch", "4")
    page.fill("#context", "16384")
    page.select_option("#device", "L4")
    settle(page)
    body = {"source": "qwen2.5-7b", "dtype": "fp8-e4m3", "batch": 4, "context": 16384}
    expected = api(base_url, "/api/inference", body)
    assert shown_bytes(page) == expected["total_bytes"]
    assert page.get_attribute("#total", "data-bytes") == str(expected["total_bytes"])
    # the stacked bar: one rectangle per non-zero component, with the API's bytes
    rects = page.locator("#bar rect")
    parts = [c for c in expected["components"] if c["bytes"] > 0]
    assert rects.count() == len(parts)
    shown = [
        (r.get_attribute("data-name"), int(r.get_attribute("data-bytes"))) for r in rects.all()
    ]
    assert shown == [(c["name"], c["bytes"]) for c in parts]
    widths = [r.bounding_box()["width"] for r in rects.all()]
    assert all(w > 0 for w in widths) and sum(widths) > 500
    # the verdict against the device
    fit = api(
        base_url,
        "/api/fit",
        {
            "source": "qwen2.5-7b",
            "device": "L4",
            "mode": "inference",
            "dtype": "fp8-e4m3",
            "batch": 4,
            "context": 16384,
        },
    )
    assert fit["total_bytes"] == expected["total_bytes"]
    verdict = page.locator("#verdict")
    assert verdict.get_attribute("data-fits") == json.dumps(fit["fits"])
    assert ("Fits" if fit["fits"] else "Does not fit") in verdict.inner_text()
    # the charts: the context sweep passes through the shown total
    assert_chart_drawn(page, "#chart-context", 10)
    assert_chart_drawn(page, "#chart-batch", 8)
    dot = page.locator('#chart-context circle[data-value="16384"]')
    assert dot.get_attribute("data-bytes") == str(expected["total_bytes"])
    assert page.locator("#chart-context line.budget").count() == 1


def test_qlora_workload_equals_the_train_api(page: Any, base_url: str) -> None:
    page.select_option("#model", "llama-3.1-8b")
    page.select_option("#workload", "qlora")
    assert page.locator("#dtype").is_hidden() and page.locator("#lora-rank").is_visible()
    page.fill("#lora-rank", "32")
    page.fill("#context", "2048")
    page.check("#checkpointing")
    page.select_option("#optimizer", "adamw-8bit")
    settle(page)
    expected = api(
        base_url,
        "/api/train",
        {
            "source": "llama-3.1-8b",
            "method": "qlora",
            "lora_rank": 32,
            "seq": 2048,
            "batch": 1,
            "checkpointing": True,
            "optimizer": "adamw-8bit",
            "devices": 1,
        },
    )
    assert shown_bytes(page) == expected["total_bytes"]
    assert page.inner_text("#context-label").startswith("sequence length")
    assert_chart_drawn(page, "#chart-context", 8)
    assert page.locator("#verdict").is_hidden()  # no device chosen


def test_pasted_config_and_a_bad_one(page: Any, base_url: str) -> None:
    config = load_fixture("mistralai/Mixtral-8x7B-v0.1")
    page.check('input[name="source-kind"][value="config"]')
    page.fill("#config", json.dumps(config, indent=2))
    page.fill("#context", "4096")
    settle(page)
    expected = api(base_url, "/api/inference", {"source": config, "context": 4096})
    assert shown_bytes(page) == expected["total_bytes"]
    assert page.locator("#error").is_hidden()
    page.fill("#config", '{"model_type": "llama"}')
    page.wait_for_selector("body[data-state=error]", timeout=20_000)
    error = page.inner_text("#error")
    assert "vocab_size" in error and "\n" not in error
    assert page.inner_text("#total-bytes") == ""  # the previous answer is gone
    assert page.locator("#bar rect").count() == 0
    page.fill("#config", "{not json")
    page.wait_for_selector("#error:has-text('not valid JSON')", timeout=20_000)


def test_engine_and_its_cache_formats(page: Any, base_url: str) -> None:
    page.select_option("#model", "qwen2.5-7b")
    page.select_option("#engine", "llama.cpp")
    settle(page)
    kv = [o.get_attribute("value") for o in page.locator("#kv-dtype option").all()]
    assert "q8_0" in kv and "fp8-e4m3" not in kv  # only what llama.cpp's cache takes
    page.select_option("#kv-dtype", "q8_0")
    page.select_option("#dtype", "gguf-q4_k_m")
    settle(page)
    body = {"source": "qwen2.5-7b", "engine": "llama.cpp", "kv_dtype": "q8_0",
            "dtype": "gguf-q4_k_m", "batch": 1}  # fmt: skip
    expected = api(base_url, "/api/inference", body)
    assert shown_bytes(page) == expected["total_bytes"] and expected["engine"] == "llama.cpp"
    dtypes = [o.get_attribute("value") for o in page.locator("#dtype option").all()]
    assert "q8_0" not in dtypes and "gguf-q8_0" in dtypes  # weights take GGUF file types


def test_sharded_training_and_what_to_change(page: Any, base_url: str) -> None:
    page.select_option("#model", "llama-3.1-8b")
    page.select_option("#workload", "full")
    page.select_option("#device", "A100-80GB")
    page.fill("#count", "8")
    page.select_option("#sharding", "zero-3")
    settle(page)
    body = {"source": "llama-3.1-8b", "method": "full", "optimizer": "adamw", "batch": 1,
            "checkpointing": False, "devices": 8, "zero": 3}  # fmt: skip
    expected = api(base_url, "/api/train", body)
    assert shown_bytes(page) == expected["total_bytes"]
    assert page.get_attribute("#verdict", "data-total-bytes") == str(expected["total_bytes"])
    assert page.locator("#changes-box").is_hidden()  # it fits: nothing to change
    # one device without sharding does not fit: the page lists the changes that would
    page.fill("#count", "1")
    page.select_option("#sharding", "")
    settle(page)
    fit = api(base_url, "/api/fit", {**body, "devices": 1, "zero": 0, "device": "A100-80GB",
                                     "count": 1, "mode": "train"})  # fmt: skip
    assert fit["fits"] is False and fit["changes"]
    items = page.locator("#changes li")
    assert items.count() == len(fit["changes"])
    assert [int(i.get_attribute("data-total-bytes")) for i in items.all()] == [
        c["total_bytes"] for c in fit["changes"]
    ]


def test_narrow_screen_has_no_horizontal_scroll(browser: Any, base_url: str) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 800})
    page = context.new_page()
    page.goto(base_url + "/")
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 360
    form = page.locator("#form").bounding_box()
    results = page.locator("#results").bounding_box()
    assert results["y"] >= form["y"] + form["height"] - 1  # stacked, not side by side
    box = page.locator("#chart-context path.line").bounding_box()
    assert box is not None and box["width"] > 150
    context.close()
