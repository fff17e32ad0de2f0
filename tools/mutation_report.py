"""Mutation scores per module from the last ``mutmut run`` (see docs/testing.md).

Reads ``mutmut results --all true`` (run from the repository root, after ``mutmut run``),
drops the mutants listed as equivalent in ``tools/mutation_equivalents.txt`` (each with
the reason it cannot change behaviour; those whose reason starts with "killed by" are
killed by a test mutmut cannot observe, and count as killed), and prints one markdown row
per module:

    module | mutants | killed | survived | timeout | no tests | equivalent | score

``score`` is killed (timeouts count as killed: the mutant made the tests hang) over the
mutants that are neither equivalent nor unchecked. ``--survivors`` also lists the
surviving mutants (``mutmut show NAME`` prints one's diff). The exit status is 1 when a
module scores below ``--target`` (default 0.9).

A ``mutmut run`` after tests changed resets the mutants those tests reach; to re-check only
the survivors, save ``mutmut results --all true`` to a file first, run ``mutmut run NAME...``
on the survivors, save again, and merge the two with ``--results first.txt second.txt``.

Usage::

    python tools/mutation_report.py [--survivors] [--target 0.9] [--results FILE...]
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

EQUIVALENTS = Path(__file__).with_name("mutation_equivalents.txt")
# "    gankern.metrics.kid.x_kernel_inception_distance__mutmut_12: survived"
_LINE = re.compile(r"^\s*(?P<name>[\w.ǁ]+__mutmut_\d+): (?P<status>.+?)\s*$")
KILLED = ("killed", "timeout")


def module_of(mutant: str) -> str:
    """``gankern.ops.upfirdn2d.x_setup_filter__mutmut_3`` -> ``gankern.ops.upfirdn2d``."""
    parts = mutant.split(".")
    for i, part in enumerate(parts):
        if part.startswith(("x_", "xǁ")):
            return ".".join(parts[:i])
    raise ValueError(f"not a mutmut mutant name: {mutant!r}")


def load_equivalents(path: Path = EQUIVALENTS) -> dict[str, str]:
    """``{mutant name: why it is equivalent}``: lines ``NAME: reason`` (``#`` comments)."""
    if not path.is_file():
        return {}
    equivalents = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, reason = line.partition(":")
        if not sep or not reason.strip():
            raise ValueError(f"{path}:{number}: expected 'NAME: reason', got {line!r}")
        equivalents[name.strip()] = reason.strip()
    return equivalents


def parse_results(text: str) -> dict[str, str]:
    """``{mutant name: status}`` from the output of ``mutmut results --all true``."""
    results = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            results[match["name"]] = match["status"]
    return results


def merge_results(runs: list[dict[str, str]]) -> dict[str, str]:
    """Merge runs in order: a later run's status replaces an earlier one unless it is
    "not checked" (mutmut resets mutants whose tests changed; re-run ones are decided)."""
    merged: dict[str, str] = {}
    for run in runs:
        for name, status in run.items():
            if status != "not checked" or name not in merged:
                merged[name] = status
    return merged


def score_table(results: dict[str, str], equivalents: dict[str, str]) -> list[dict]:
    """One row per module: counts per status and the score."""
    by_module: dict[str, Counter] = defaultdict(Counter)
    for name, status in results.items():
        if name in equivalents and status != "killed":
            # "killed by <test>": killed outside mutmut's reach (spawned processes)
            status = "killed" if equivalents[name].startswith("killed by") else "equivalent"
        by_module[module_of(name)][status] += 1
    rows = []
    for module in sorted(by_module):
        counts = by_module[module]
        killed = sum(counts[s] for s in KILLED)
        decided = killed + counts["survived"] + counts["no tests"] + counts["suspicious"]
        rows.append({
            "module": module, "mutants": sum(counts.values()), "killed": killed,
            "survived": counts["survived"], "timeout": counts["timeout"],
            "no tests": counts["no tests"], "equivalent": counts["equivalent"],
            "not checked": counts["not checked"],
            "score": killed / decided if decided else float("nan"),
        })
    return rows


def render(rows: list[dict]) -> str:
    keys = ["module", "mutants", "killed", "survived", "timeout", "no tests", "equivalent",
            "not checked", "score"]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [f"`{row['module']}`"] + [str(row[k]) for k in keys[1:-1]]
        score = "-" if math.isnan(row["score"]) else f"{row['score']:.1%}"
        lines.append("| " + " | ".join(cells + [score]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--survivors", action="store_true", help="list surviving mutants")
    parser.add_argument("--target", type=float, default=0.9, help="minimum score per module")
    parser.add_argument(
        "--results", nargs="+", type=Path, default=None,
        help="saved outputs of `mutmut results --all true`, merged in order (a later file's "
             "decided status replaces an earlier one's), instead of asking mutmut now",
    )
    args = parser.parse_args(argv)
    if args.results is None:
        texts = [subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                                check=True, capture_output=True, text=True).stdout]
    else:
        texts = [path.read_text() for path in args.results]
    results = merge_results([parse_results(text) for text in texts])
    if not results:
        print("no mutmut results: run `mutmut run` first", file=sys.stderr)
        return 2
    equivalents = load_equivalents()
    modules = {module_of(name) for name in results}
    unknown = sorted(n for n in set(equivalents) - set(results) if module_of(n) in modules)
    if unknown:
        print(f"warning: {len(unknown)} listed equivalents are not mutants of this run "
              f"(the source changed?): {unknown[:3]}", file=sys.stderr)
    rows = score_table(results, equivalents)
    print(render(rows))
    if args.survivors:
        print("\nsurvivors:")
        for name, status in sorted(results.items()):
            if status == "survived" and name not in equivalents:
                print(f"  {name}")
    return int(any(row["score"] < args.target for row in rows))  # nan (unchecked) passes


if __name__ == "__main__":
    sys.exit(main())
