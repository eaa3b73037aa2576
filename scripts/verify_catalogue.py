"""Verify (and regenerate) the built-in model catalogue against transformers.

Every entry in ``src/modelmem/data/models/*.json`` carries the real ``config.json`` of a
model and ``params_transformers``, the exact number of unique parameters that
transformers builds from that config.  This script rebuilds each model on the ``meta``
device (no weights, no memory) and compares the count:

    python scripts/verify_catalogue.py            # check; exit 1 on any problem
    python scripts/verify_catalogue.py --write    # rewrite params_transformers
    python scripts/verify_catalogue.py llama-3.1-8b gpt2   # only these entries

Which class defines the count:

* the class the config's ``architectures`` names, when transformers has it for the
  config (``BertForMaskedLM`` for bert-base-uncased: no pooler, the MLM head);
* else ``AutoModel`` (``BertModel``, pooler included) for ``bert``;
* ``Gemma3ForConditionalGeneration`` for ``gemma3`` (the multimodal model);
* ``AutoModelForCausalLM`` for everything else.

Configs are loaded the way the Hub loads them (``AutoConfig.from_pretrained`` on a folder
holding the ``config.json``); ``trust_remote_code`` is never used.  Tied weights count
once (``model.parameters()`` deduplicates them); buffers are not parameters; a
``quantization_config`` does not change the logical count.

With ``--write`` this is the only way ``params_transformers`` is regenerated; the rest
of the entry is data copied from public sources and is never rewritten here.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE_DIR = ROOT / "src" / "modelmem" / "data" / "models"

# Keys in the order every entry is written; "aliases", "retrieved_from" and "shipped" (the
# weight scheme of a quantized release) are optional.
KEY_ORDER: tuple[str, ...] = (
    "name",
    "hub_id",
    "aliases",
    "family",
    "context_length",
    "context_source",
    "tokenizer",
    "source",
    "retrieved_from",
    "params_transformers",
    "published_params",
    "shipped",
    "config",
)
REQUIRED: tuple[str, ...] = (
    "name",
    "hub_id",
    "family",
    "context_length",
    "context_source",
    "tokenizer",
    "source",
    "params_transformers",
    "published_params",
    "config",
)
OPTIONAL: tuple[str, ...] = ("aliases", "retrieved_from", "shipped")

# model_type -> how the counted model is built ("causal-lm" unless listed).
MODEL_CLASS: dict[str, str] = {
    "bert": "base",
    "gemma3": "gemma3-conditional-generation",
}


def load_entries(directory: Path, only: Sequence[str] = ()) -> list[tuple[Path, dict[str, Any]]]:
    """Read every catalogue file (or only the named ones), sorted by file name."""
    paths = sorted(directory.glob("*.json"))
    if only:
        wanted = set(only)
        paths = [p for p in paths if p.stem in wanted]
        missing = wanted - {p.stem for p in paths}
        if missing:
            raise SystemExit(f"no catalogue entry named: {', '.join(sorted(missing))}")
    return [(p, json.loads(p.read_text(encoding="utf-8"))) for p in paths]


def check_fields(path: Path, entry: dict[str, Any]) -> list[str]:
    """Return the problems with an entry's fields (empty when it is well formed)."""
    problems: list[str] = []
    for key in REQUIRED:
        value = entry.get(key)
        if value is None or value == "" or value == {} or value == []:
            problems.append(f"missing or empty field {key!r}")
    unknown = set(entry) - set(REQUIRED) - set(OPTIONAL)
    if unknown:
        problems.append(f"unknown fields {sorted(unknown)}")
    if problems:
        return problems

    name = entry["name"]
    config = entry["config"]
    if not isinstance(config, dict):
        return ["'config' is not an object"]
    if name != path.stem:
        problems.append(f"name {name!r} differs from the file name {path.stem!r}")
    if name != name.lower():
        problems.append(f"name {name!r} is not lower-case")
    if entry["family"] != config.get("model_type"):
        problems.append(
            f"family {entry['family']!r} differs from config model_type "
            f"{config.get('model_type')!r}"
        )
    expected_source = f"https://huggingface.co/{entry['hub_id']}/blob/main/config.json"
    if entry["source"] != expected_source:
        problems.append(f"source {entry['source']!r} is not {expected_source!r}")
    context = entry["context_length"]
    if not isinstance(context, int) or isinstance(context, bool) or context <= 0:
        problems.append(f"context_length {context!r} is not a positive integer")
    params = entry["params_transformers"]
    if not isinstance(params, int) or isinstance(params, bool) or params <= 0:
        problems.append(f"params_transformers {params!r} is not a positive integer")
    aliases = entry.get("aliases", [])
    if not isinstance(aliases, list) or not all(
        isinstance(a, str) and a and a == a.lower() for a in aliases
    ):
        problems.append(f"aliases {aliases!r} must be a list of non-empty lower-case names")
    if "retrieved_from" in entry and not entry["retrieved_from"]:
        problems.append("'retrieved_from' is present but empty")
    order = [k for k in KEY_ORDER if k in entry]
    if list(entry) != order:
        problems.append(f"keys are not in the catalogue order {order}")
    return problems


def check_unique_names(entries: Sequence[tuple[Path, dict[str, Any]]]) -> list[str]:
    """Every name, alias and Hub id (compared lower-case) must point at one entry only."""
    owner: dict[str, str] = {}
    problems: list[str] = []
    for _, entry in entries:
        name = str(entry.get("name", ""))
        labels = {
            str(label).lower()
            for label in [name, entry.get("hub_id", ""), *entry.get("aliases", [])]
        }
        for label in sorted(labels - {""}):
            if label in owner and owner[label] != name:
                problems.append(f"{label!r} names both {owner[label]!r} and {name!r}")
            owner[label] = name
    return problems


def count_parameters(config: dict[str, Any]) -> int:
    """Unique parameters of the transformers model built on ``meta`` from ``config``."""
    import torch
    import transformers

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "config.json").write_text(json.dumps(config), encoding="utf-8")
        cfg = transformers.AutoConfig.from_pretrained(folder, trust_remote_code=False)

    kind = MODEL_CLASS.get(config["model_type"], "causal-lm")
    names = config.get("architectures") or []
    named = getattr(transformers, names[0], None) if names else None
    with torch.device("meta"):
        if named is not None and isinstance(cfg, named.config_class):
            model = named(cfg)
        elif kind == "base":
            model = transformers.AutoModel.from_config(  # type: ignore[no-untyped-call]
                cfg, trust_remote_code=False
            )
        elif kind == "gemma3-conditional-generation":
            model = transformers.Gemma3ForConditionalGeneration(cfg)
        else:
            model = transformers.AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
                cfg, trust_remote_code=False
            )
    return sum(p.numel() for p in model.parameters())


def dump_entry(entry: dict[str, Any]) -> str:
    """Serialise an entry: catalogue key order, 2-space indent, trailing newline."""
    ordered = {k: entry[k] for k in KEY_ORDER if k in entry}
    return json.dumps(ordered, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="catalogue names to check (default: all)")
    parser.add_argument(
        "--write",
        action="store_true",
        help="rewrite params_transformers from transformers instead of failing on a mismatch",
    )
    parser.add_argument(
        "--directory", type=Path, default=CATALOGUE_DIR, help="catalogue folder to check"
    )
    args = parser.parse_args(argv)

    entries = load_entries(args.directory, args.names)
    if not entries:
        print(f"no catalogue entries in {args.directory}", file=sys.stderr)
        return 1

    catalogue_problems = check_unique_names(entries)
    for problem in catalogue_problems:
        print(f"FAIL  catalogue: {problem}")

    failed: list[str] = []
    rewritten: list[str] = []
    for path, entry in entries:
        outcome = verify_entry(path, entry, write=args.write)
        if outcome == "fail":
            failed.append(path.stem)
        elif outcome == "written":
            rewritten.append(path.stem)

    total = len(entries)
    summary = f"{total - len(failed)}/{total} entries verified"
    if rewritten:
        summary += f", {len(rewritten)} rewritten ({', '.join(rewritten)})"
    if failed:
        summary += f", {len(failed)} failed ({', '.join(failed)})"
    if catalogue_problems:
        summary += f", {len(catalogue_problems)} catalogue problem(s)"
    print(summary)
    return 1 if failed or catalogue_problems else 0


def verify_entry(path: Path, entry: dict[str, Any], *, write: bool) -> str:
    """Check one entry and print one line; return "ok", "written" or "fail"."""
    problems = check_fields(path, entry)
    if problems:
        for problem in problems:
            print(f"FAIL  {path.name}: {problem}")
        return "fail"
    start = time.perf_counter()
    try:
        counted = count_parameters(entry["config"])
    except Exception as error:  # report it and carry on with the other entries
        print(f"FAIL  {entry['name']}: transformers could not build it: {error!r}")
        return "fail"
    seconds = time.perf_counter() - start
    stored = entry["params_transformers"]
    label = f"{entry['name']:<22} {counted:>16,d}  ({entry['published_params']}; {seconds:.1f} s)"
    if counted == stored:
        print(f"ok    {label}")
        return "ok"
    if write:
        entry["params_transformers"] = counted
        path.write_text(dump_entry(entry), encoding="utf-8")
        print(f"write {label}  (was {stored:,d})")
        return "written"
    print(f"FAIL  {label}  catalogue says {stored:,d}")
    return "fail"


if __name__ == "__main__":
    sys.exit(main())
