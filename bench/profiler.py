"""Profile one aiokes process under load with py-spy (issue 5, point 3).

The harness starts aiokes (one worker), drives a scenario at it from its load processes and
samples the server with ``py-spy record --format raw`` (collapsed stacks) for the length of
the run, counting only the thread that holds the GIL (the event loop; idle pool threads
would otherwise show up as busy). The top functions by own ("self") and by inclusive
samples go to ``profile.md``; ``profile.raw`` feeds any flame-graph tool. Time in C code
(TLS records, socket writes, uvloop) is charged to the Python frame that called it. py-spy
needs ptrace rights on the server (root, CAP_SYS_PTRACE, or ``kernel.yama.ptrace_scope`` 0).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.certs import make_certificates
from bench.driver import drive
from bench.keys import create_keys
from bench.loadgen import LoadSpec
from bench.machine import describe_machine, usable_cpus
from bench.scenarios import Workload, get_scenario, key_names
from bench.targets import started_target

__all__ = ["Hotspots", "find_py_spy", "parse_collapsed", "profile_server"]

_LINE_NUMBER = re.compile(r":\d+\)$")


@dataclass(frozen=True, slots=True)
class Hotspots:
    samples: int
    own: list[tuple[str, float]]  # (function, % of samples) by samples on top of the stack
    inclusive: list[tuple[str, float]]  # (function, % of samples) anywhere on the stack

    def markdown(self, top: int = 25) -> str:
        lines = [f"{self.samples:,} samples.", "", "| own % | function |", "|---:|---|"]
        lines += [f"| {share:.1f} | `{name}` |" for name, share in self.own[:top]]
        lines += ["", "| inclusive % | function |", "|---:|---|"]
        # Frames on every stack (the interpreter's entry, click, the runner) say nothing.
        below_root = [(name, share) for name, share in self.inclusive if share < 99.5]
        lines += [f"| {share:.1f} | `{name}` |" for name, share in below_root[:top]]
        return "\n".join(lines) + "\n"


def find_py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.is_file() else shutil.which("py-spy")


def parse_collapsed(text: str) -> Hotspots:
    """Collapsed stacks (``frame;frame;… count``) to own and inclusive shares per function."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]
        total += count
        own[_short(frames[-1])] += count
        for frame in set(frames):
            inclusive[_short(frame)] += count
    return Hotspots(total, _shares(own, total), _shares(inclusive, total))


def _short(frame: str) -> str:
    """``handler (/long/path/site-packages/aiohttp/web.py)`` → ``handler (aiohttp/web.py)``."""
    name, _, location = frame.partition(" (")
    for marker in ("site-packages/", "/work/main/", "lib/python3."):
        if marker in location:
            location = location.split(marker, 1)[1]
            if marker == "lib/python3.":
                location = "stdlib/" + location.split("/", 1)[-1]
    return f"{name} ({location}" if location else name


def _shares(counter: Counter[str], total: int) -> list[tuple[str, float]]:
    return [(name, 100.0 * n / total) for name, n in counter.most_common()] if total else []


def profile_server(
    out: Path, *, scenario_name: str = "generate", connections: int = 64, duration: float = 15.0
) -> Hotspots:
    py_spy = find_py_spy()
    if py_spy is None:
        raise RuntimeError("py-spy not found: pip install py-spy (it is in the 'bench' extra)")
    work = out / "work"
    certs = make_certificates(work / "certs")
    cpus = usable_cpus()
    server_cpus = cpus[:1] if len(cpus) > 1 else ()
    load_cpus = cpus[1:] if len(cpus) > 1 else ()
    scenario = get_scenario(scenario_name)
    with started_target("aiokes-fs", certs, work / "aiokes-fs", cpus=server_cpus) as target:
        names = key_names(scenario)
        create_keys(target.endpoint, target.tls, names)
        workload = Workload(scenario, names, {})
        spec = LoadSpec(target.endpoint, target.tls, workload, connections, None, duration, 1.0, 0,
                        (0, 1), cpus=load_cpus)  # fmt: skip
        raw = out / "profile.raw"
        seconds = str(int(duration + 2))
        argv = [py_spy, "record", "--pid", str(target.pid), "--format", "raw", "--gil",
                "--rate", "250", "--duration", seconds, "--output", str(raw)]  # fmt: skip
        sampler = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        measurement = drive([spec], f"profile {scenario_name} c={connections}")
        _, errors = sampler.communicate(timeout=duration + 60)
        if sampler.returncode != 0:
            raise RuntimeError(f"py-spy failed: {errors.strip()[-500:]}")
    hotspots = parse_collapsed(raw.read_text())
    machine = describe_machine()
    header = (
        f"# Profile: aiokes-fs, {scenario_name}, {connections} connections, "
        f"{measurement.throughput:,.0f} req/s under py-spy\n\n"
        f"{machine['date_utc']}, nproc={machine['nproc']}, {machine['cpu_model']}, "
        f"commit {machine['commit']}\n\n"
    )
    (out / "profile.md").write_text(header + hotspots.markdown())
    return hotspots
