"""``python -m benchmarks.compare [--base REV] [NAME ...]``: the benchmarks of two versions, in one run.

Timings on a shared two-core machine drift by tens of percent from one hour to the next, so a
"before" measured yesterday says little about a change. This runs every benchmark for the base
revision (a ``git worktree`` of ``--base``, default ``origin/main`` or else ``HEAD~1``) and for the
working tree alternately, base then head for each benchmark, in one session, and prints each
figure side by side with head/base. Each version runs its own benchmark code against its own
package (``PYTHONPATH`` puts the worktree first), in the same virtualenv.

Results: ``.bench/compare.json``. Lower is better for every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import BENCHMARKS

ROOT = Path(__file__).resolve().parent.parent


def _default_base() -> str:
    for rev in ("origin/main", "HEAD~1"):
        found = subprocess.run(["git", "rev-parse", "--verify", "-q", rev], cwd=ROOT, capture_output=True)
        if found.returncode == 0:
            return rev
    return "HEAD"


def _run(tree: Path, name: str, output: Path) -> dict:
    """One benchmark of the version checked out in ``tree``; its result entry."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run(
        [sys.executable, "-m", "benchmarks", name, "--output", str(output)], cwd=tree, env=env, check=True
    )
    return json.loads(output.read_text())["results"][name]


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"any of {', '.join(BENCHMARKS)} (default: all)"
    )
    parser.add_argument(
        "--base", default=None, help="git revision to compare with (default: origin/main, else HEAD~1)"
    )
    parser.add_argument("--output", type=Path, default=ROOT / ".bench" / "compare.json")
    args = parser.parse_args(argv)
    base = args.base or _default_base()
    names = args.names or list(BENCHMARKS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="azerion-bench-base-") as scratch:
        tree = Path(scratch) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), base], cwd=ROOT, check=True)
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True, check=True
            ).stdout.strip()
            for name in names:
                before = _run(tree, name, Path(scratch) / f"base-{name}.json")
                after = _run(ROOT, name, Path(scratch) / f"head-{name}.json")
                rows.append({"name": name, "base": before, "head": after})
                print(
                    f"{name}: base {before['value']:.3f}{before['unit']}"
                    f"  head {after['value']:.3f}{after['unit']}"
                    f"  head/base {after['value'] / before['value']:.2f}",
                    flush=True,
                )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"base": base, "base_commit": commit, "rows": rows}, indent=2) + "\n")
    print(f"\n| | base {commit} | head | head/base |\n|---|---|---|---|")
    for row in rows:
        before, after = row["base"], row["head"]
        print(
            f"| {row['name']} | {before['value']:.3f}{before['unit']} | {after['value']:.3f}{after['unit']} "
            f"| {after['value'] / before['value']:.2f} |"
        )
    print(f"Written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
