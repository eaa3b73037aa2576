"""Run hostile cases one by one, each in a forked child capped in memory and time.

Usage: python hostile_runner.py CASES.json RESULTS.json. Each case is run by a child
forked from this process (modelmem already imported, so a case costs milliseconds, not an
interpreter start): its address space is capped at LIMIT_BYTES, it is killed after
WALL_SECONDS, and its exit code, standard output and error, elapsed time and peak
resident memory are recorded. Standard input comes from a file or /dev/zero; output goes
to files, so even what a C library writes on file descriptor 2 is seen.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

LIMIT_BYTES = 1536 * 2**20
WALL_SECONDS = 5.0


def _child(case: dict[str, Any]) -> None:
    folder = Path(case["dir"])
    os.chdir(folder)
    stdin = "/dev/zero" if case["stdin"] == "zero" else str(folder.parent / f"{folder.name}.stdin")
    for fd, path, flags in (
        (0, stdin, os.O_RDONLY),
        (1, str(folder.parent / f"{folder.name}.out"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        (2, str(folder.parent / f"{folder.name}.err"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    ):
        opened = os.open(path, flags, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))
    code = 1
    try:
        from modelmem.cli import main

        code = main(case["argv"])
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(case)
    killed = False
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - started > WALL_SECONDS:
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            killed = True
            break
        time.sleep(0.002)
    folder = Path(case["dir"])
    out = (folder.parent / f"{folder.name}.out").read_bytes()
    err = (folder.parent / f"{folder.name}.err").read_bytes()
    return {
        "id": case["id"],
        "code": os.waitstatus_to_exitcode(status),
        "killed": killed,
        "seconds": time.monotonic() - started,
        "max_rss_bytes": usage.ru_maxrss * 1024,  # Linux reports KiB; the fork's own included
        "stdout": out[:2000].decode("utf-8", "replace"),
        "stdout_bytes": len(out),
        "stderr": err[:4000].decode("utf-8", "replace"),
    }


def main() -> None:
    cases = json.loads(Path(sys.argv[1]).read_text())
    # import what the cases use once, before forking, so each child starts warm
    import modelmem.cli  # noqa: F401

    # torch and transformers too: `measure` imports them before it checks its options, and
    # their import (seconds) is start-up cost, not the work a hostile input can cause
    for name in (
        "gguf",
        "tokenizers",
        "tiktoken",
        "huggingface_hub",
        "re2",
        "torch",
        "transformers",
    ):
        with contextlib.suppress(ImportError):
            __import__(name)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    results = [{**run_case(case), "baseline_rss_bytes": baseline} for case in cases]
    Path(sys.argv[2]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
