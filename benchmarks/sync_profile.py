"""Where a sync's client CPU goes: one full first run, its CPU charged to layers.

Run on demand (not a test):

    python benchmarks/sync_profile.py --crm hubspot --contacts 10000 --cprofile   # ~1 minute
    python benchmarks/sync_profile.py --crm hubspot --contacts 10000   # py-spy ('.[bench]')

The sandbox runs in a child process (20 ms latency, HubSpot quotas raised as in
``sync_bench.py``). Each sample or function is charged to one layer: the innermost frame that
belongs to a known package or crmsync module decides it (``LAYERS``).

* ``--cprofile``: the run at concurrency 1 (every call on this thread) under cProfile.
  Deterministic; it inflates code made of many small Python calls against code that runs in C,
  so compare shares and before/after, not absolute µs. A built-in's time goes to its callers'
  layers; socket waits, sleeps and lock waits are left out.
* default: this script re-runs itself under ``py-spy record --gil`` (the thread holding the
  GIL, 250 Hz) at the configured concurrency. Closer to a real run, but noisy on a loaded
  machine: samples gather where the GIL changes hands. ``--raw FILE`` keeps the collapsed
  stacks for a flame graph.

Imports and building and closing the parts are left out, as ``sync_bench.py`` times only
``execute``. Both modes print the run's user and system CPU.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_bench import Sandbox, set_up  # noqa: E402

# (layer, path fragments), innermost match wins; order matters only within one frame.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("state store (SQLAlchemy/SQLite)", ("crmsync/state/", "sqlalchemy/", "sqlite3")),
    ("rules", ("crmsync/rules/", "<crmsync rules", "crmsync/model.py", "re2")),
    ("field map / coercion", ("crmsync/connectors/fieldmap", "crmsync/coerce.py")),
    # The installed SDK only: a bare "hubspot/" also matches crmsync's own connector and any
    # checkout whose directory ends in "hubspot" (a worktree named wt-hubspot, say).
    ("HubSpot SDK (models, (de)serialize)", ("-packages/hubspot/", "six.py")),
    ("Salesforce SDK", ("simple_salesforce/",)),
    ("HTTP (requests/urllib3/http)", ("requests/", "urllib3/", "http/client", "socket.py",
                                      "ssl.py", "email/", "idna")),
    ("JSON / CSV", ("json/", "orjson", "csv.py")),
    ("connector (ours)", ("crmsync/connectors/",)),
    ("pacing / retry", ("crmsync/retry.py",)),
    ("sync loop (ours)", ("crmsync/sync/", "crmsync/plan.py")),
    ("threads / queues", ("threading.py", "queue.py", "concurrent/")),
]


# Start-up, not the run: imports and building the parts (the benchmarks time ``execute``).
SKIP = ("_find_and_load ", "load_parts ", "Parts.close ")


def _layer(frames: list[str]) -> str:
    for frame in reversed(frames):
        for layer, fragments in LAYERS:
            if any(fragment in frame for fragment in fragments):
                return layer
    return "other"


def child(base_url: str, token: str, crm: str, workdir: Path, *,
          cprofile: Path | None = None) -> None:
    """The profiled part: one full first sync (run under py-spy by ``main``; or, with
    ``cprofile``, under cProfile at concurrency 1, so every call is on this thread)."""
    from crmsync.config import load_settings
    from crmsync.sync import SyncOptions, SyncRun
    from crmsync.wiring import load_parts

    parts = load_parts(load_settings(workdir / "crmsync.toml", env={}))
    try:
        options = SyncOptions(full=True, concurrency=1) if cprofile else SyncOptions(full=True)
        run = SyncRun(parts.connector, parts.ruleset, parts.store, options=options)
        profiler = cProfile.Profile() if cprofile else None
        usage = resource.getrusage(resource.RUSAGE_SELF)
        started, cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        summary = run.execute()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(cprofile))
        cpu = time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_SELF)
        user, system = after.ru_utime - usage.ru_utime, after.ru_stime - usage.ru_stime
        print(f"run {summary.status}: client CPU {cpu:.2f} s (user {user:.2f}, system "
              f"{system:.2f}), wall {time.perf_counter() - started:.2f} s", flush=True)
    finally:
        parts.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crm", choices=["hubspot", "salesforce"], default="hubspot")
    parser.add_argument("--contacts", type=int, default=10000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--raw", type=Path, help="keep the collapsed stacks here")
    parser.add_argument("--cprofile", action="store_true",
                        help="cProfile at concurrency 1 instead of py-spy (deterministic, "
                             "slower; tottime by layer and the top functions)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(options.child[0], options.child[1], options.crm, Path(options.child[2]))
        return
    box = Sandbox(options.crm, options.contacts)
    try:
        config, _limits = set_up(box, options.crm, options.latency_ms)
        workdir = config.parent
        if options.cprofile:
            stats_file = workdir / "run.pstats"
            child(box.base_url, box.token, options.crm, workdir, cprofile=stats_file)
            _print_cprofile(stats_file, options.contacts)
            return
        raw = options.raw or workdir / "stacks.txt"
        subprocess.run(
            ["py-spy", "record", "--format", "raw", "--threads", "--gil",
             "--rate", str(options.rate),
             "--output", str(raw), "--", sys.executable, __file__, "--crm", options.crm,
             "--child", box.base_url, box.token, str(workdir)],
            check=True, env={**os.environ}, stderr=subprocess.DEVNULL)
    finally:
        box.close()
    shares: collections.Counter[str] = collections.Counter()
    for line in raw.read_text("utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f for f in stack.split(";") if not f.startswith("thread (")]
        if not frames or any(f.startswith(SKIP) for f in frames):
            continue  # start-up, or a thread caught outside Python code
        shares[_layer(frames)] += int(count)
    total = sum(shares.values())
    seconds = total / options.rate
    print(f"{options.crm}, {options.contacts} contacts: {total} samples, about {seconds:.1f} s "
          f"of CPU, {seconds / options.contacts * 1e6:.0f} µs/contact")
    for layer, count in shares.most_common():
        print(f"  {layer:<38}{count / total:>6.1%}"
              f"{count / options.rate / options.contacts * 1e6:>8.0f} µs/contact")


#: Built-ins that wait rather than work (the latency, the pacer, locks): not client CPU.
WAITS = ("recv_into", "time.sleep", "sendall", "select", "poll", "acquire", "'wait'")


def _print_cprofile(stats_file: Path, contacts: int) -> None:
    """Own time (tottime) by layer, then the functions that cost the most.

    A built-in's time (``dict.get``, ``sqlite3`` calls, ``orjson.loads``) is charged to the
    layers of its callers, in proportion to the time each caller spent in it; waits are left out.
    """
    stats = pstats.Stats(str(stats_file))
    table = stats.stats  # type: ignore[attr-defined]
    shares: collections.Counter[str] = collections.Counter()
    waited = 0.0
    for (filename, _line, name), (_cc, _nc, tottime, _ct, callers) in table.items():
        if filename != "~":
            shares[_layer([f"{name} ({filename})"])] += tottime
            continue
        if any(wait in name for wait in WAITS):
            waited += tottime
            continue
        own = _layer([name])
        if own != "other" or not callers:
            shares[own] += tottime
            continue
        for (c_file, _c_line, c_name), edge in callers.items():
            shares[_layer([f"{c_name} ({c_file})"])] += edge[2]
    total = sum(shares.values())
    print(f"cProfile, concurrency 1: {total:.2f} s of profiled CPU ({waited:.1f} s waiting left "
          f"out), {total / contacts * 1e6:.0f} µs/contact (cProfile inflates small calls)")
    for layer, seconds in shares.most_common():
        print(f"  {layer:<38}{seconds / total:>6.1%}{seconds / contacts * 1e6:>8.0f} µs/contact")
    stats.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
