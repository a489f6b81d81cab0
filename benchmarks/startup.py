"""Start-up time of the ``crmsync`` command line, measured hyperfine-style.

Runs each command N times in fresh processes (after one warm-up run, so the file cache is
warm) and prints min / median / max wall time per command, side by side for every source
tree given. Use it to compare a change with the code before it:

    git archive <old-commit> src | tar -x -C /tmp/before
    python benchmarks/startup.py --runs 20 src /tmp/before/src

Each tree is put first on PYTHONPATH, so the installed dependencies are shared and only
crmsync's own code differs. ``python -X importtime -m crmsync --help`` shows where the time
of one start goes.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands(empty: Path) -> dict[str, list[str]]:
    """The command lines measured (the start-up cost dominates each of them)."""
    rules = str(ROOT / "rules" / "default.json")
    return {
        "crmsync --help": ["--help"],
        "crmsync evaluate (empty input)": ["evaluate", "--rules", rules, "--input", str(empty),
                                           "--now", "2026-11-23T09:00:00Z"],
        "crmsync rules validate": ["rules", "validate", rules],
    }


def run_once(src: Path, argv: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one fresh ``python -m crmsync ARGV`` process
    using the tree ``src``. CPU time is the steadier figure on a loaded machine."""
    env = {**os.environ, "PYTHONPATH": str(src.resolve())}
    # What users get: the warm-up writes .pyc files and every later start reads them. Some
    # machines set PYTHONDONTWRITEBYTECODE, and then every start compiles every module again
    # (about 70 ms of ``crmsync evaluate``'s start here).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "crmsync", *argv], env=env, capture_output=True,
                   check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", type=Path, help="src/ folders to compare")
    parser.add_argument("--runs", type=int, default=15)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder) / "empty.jsonl"
        empty.write_text("", "utf-8")
        print(f"{'command':32} {'tree':>16} {'wall min':>9} {'median':>7} {'cpu min':>8} "
              f"{'median':>7}")
        for name, argv in commands(empty).items():
            results: dict[Path, list[tuple[float, float]]] = {s: [] for s in options.sources}
            for src in options.sources:
                run_once(src, argv)  # warm-up: file cache, .pyc files
            # Interleave the trees run by run, so machine load hits them alike.
            for _ in range(options.runs):
                for src in options.sources:
                    results[src].append(run_once(src, argv))
            for src in options.sources:
                wall = [w for w, _ in results[src]]
                cpu = [c for _, c in results[src]]
                print(f"{name:32} {str(src)[-16:]:>16} {min(wall):9.3f} "
                      f"{statistics.median(wall):7.3f} {min(cpu):8.3f} "
                      f"{statistics.median(cpu):7.3f}")
            if len(options.sources) > 1:
                first, last = options.sources[0], options.sources[-1]
                ratio = (statistics.median(w for w, _ in results[first])
                         / statistics.median(w for w, _ in results[last]))
                cpu_ratio = (statistics.median(c for _, c in results[first])
                             / statistics.median(c for _, c in results[last]))
                print(f"{'':32} {'ratio':>16} {'':9} {ratio:6.2f}x {'':8} {cpu_ratio:6.2f}x")


if __name__ == "__main__":
    main()
