"""Every hostile case of the corpus, run as a person would run it, each in its own capped
process: one clear line on stderr and exit code 2 (or, for the controls, a correct answer
with exit 0), within 5 s and MAX_RSS_BYTES more resident memory than the warm runner, under
a 1.5 GiB address-space cap (the runner's ~0.7 GiB with torch imported included).

The cases are data (corpus.HOSTILE_CASES); hostile_runner.py forks one child per case
from a warm interpreter, so the whole corpus costs seconds, not one interpreter start per
case. Standard output and error are files, so what a C or Rust library writes on file
descriptor 2 counts against the one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .corpus import HOSTILE_CASES, Case

EXIT_BAD_INPUT = 2
# What a case may add to the resident memory of the warm runner it is forked from (which
# holds modelmem, torch and transformers already imported).
MAX_RSS_BYTES = 500 * 10**6
RUNNER = Path(__file__).with_name("hostile_runner.py")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="fork, RLIMIT_AS, wait4 rusage"),
]


def _materialise(case: Case, root: Path) -> dict[str, Any]:
    folder = root / case.id
    folder.mkdir()
    for name, content in case.files:
        target = folder / name
        if name.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    for name in case.fifos:
        os.mkfifo(folder / name)
    if isinstance(case.stdin, bytes):
        (root / f"{case.id}.stdin").write_bytes(case.stdin)
    return {
        "id": case.id,
        "argv": list(case.argv),
        "dir": str(folder),
        "stdin": case.stdin if case.stdin == "zero" else "file",
    }


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("hostile")
    cases = [_materialise(case, root) for case in HOSTILE_CASES]
    (root / "cases.json").write_text(json.dumps(cases))
    src = Path(__file__).resolve().parents[2] / "src"
    env = {k: v for k, v in os.environ.items() if k != "MODELMEM_DEBUG"}
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    env["HF_HUB_OFFLINE"] = "1"  # a Hub id in the corpus must never leave the machine
    env["TOKENIZERS_PARALLELISM"] = "false"
    subprocess.run(
        [sys.executable, str(RUNNER), str(root / "cases.json"), str(root / "results.json")],
        env=env,
        cwd=root,
        check=True,
        timeout=1800,  # a guard only: each case is killed after its own 5 s
    )
    return {r["id"]: r for r in json.loads((root / "results.json").read_text())}


def test_the_corpus_is_large_and_names_are_unique() -> None:
    assert len(HOSTILE_CASES) >= 250
    assert len({c.id for c in HOSTILE_CASES}) == len(HOSTILE_CASES)


@pytest.mark.parametrize("case", HOSTILE_CASES, ids=[c.id for c in HOSTILE_CASES])
def test_hostile_case(case: Case, results: dict[str, dict[str, Any]]) -> None:
    r = results[case.id]
    shown = f"{case.id}: exit {r['code']} in {r['seconds']:.2f} s: {r['stderr'][-1500:]!r}"
    assert not r["killed"], f"over {5} s: {shown}"
    added = r["max_rss_bytes"] - r["baseline_rss_bytes"]
    assert added < MAX_RSS_BYTES, f"{added:,} bytes more resident: {shown}"
    if case.ok or (case.ok is None and r["code"] == 0):
        assert r["code"] == 0, shown
        assert r["stdout_bytes"] > 0, shown
        return
    lines = r["stderr"].strip().splitlines()
    assert r["code"] == EXIT_BAD_INPUT, shown
    assert len(lines) == 1, shown
    assert lines[0].startswith("modelmem: error: "), shown
    assert len(lines[0]) < 1000, f"the one line should stay readable: {shown}"
    assert "Traceback" not in r["stderr"] and "internal error" not in r["stderr"], shown
    assert r["stdout_bytes"] == 0, shown


def test_the_slowest_and_largest_cases(results: dict[str, dict[str, Any]]) -> None:
    """The corpus's worst time and memory, printed for the record (-s shows them)."""
    slowest = max(results.values(), key=lambda r: r["seconds"])
    largest = max(results.values(), key=lambda r: r["max_rss_bytes"])
    added = largest["max_rss_bytes"] - largest["baseline_rss_bytes"]
    print(
        f"\n{len(results)} cases; slowest {slowest['id']} {slowest['seconds']:.2f} s; "
        f"largest {largest['id']} {largest['max_rss_bytes'] / 1e6:.0f} MB resident "
        f"({added / 1e6:.0f} MB over the runner's {largest['baseline_rss_bytes'] / 1e6:.0f} MB)"
    )
    assert slowest["seconds"] < 5 and added < MAX_RSS_BYTES
