"""How fast the command line answers: `medallion --help` against `python -c "import typer"`.

Each round runs every command once, in a fresh process of this interpreter, so outside load falls on
all of them alike; the figures are medians over the rounds. The target is a ratio to the bare Typer
import of at most 2. ``--importtime`` also lists the slowest imports of ``medallion --help``.

    python bench/bench_cli.py [--rounds 21] [--importtime]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 2.0


def entry_point() -> list[str]:
    """The installed `medallion` script run by this interpreter, or the module if it is not installed."""
    script = Path(sys.executable).parent / "medallion"
    return [sys.executable, str(script)] if script.exists() else [sys.executable, "-m", "medallion.cli.main"]


def commands() -> dict[str, list[str]]:
    medallion = entry_point()
    return {
        'python -c "import typer"': [sys.executable, "-c", "import typer"],
        "medallion --help": [*medallion, "--help"],
        "medallion status --help": [*medallion, "status", "--help"],
    }


def clean_env() -> dict[str, str]:
    # No MEDALLION_* variables from the caller's shell: the help must not depend on them.
    return {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION")}


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    return seconds


def slowest_imports(command: list[str], env: dict[str, str], top: int = 15) -> list[tuple[int, str]]:
    """(cumulative µs, module) of the imports (four levels deep) of ``command``, slowest first."""
    done = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True, cwd=REPO, env=env
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        if cumulative.strip().isdigit() and depth <= 3:
            rows.append((int(cumulative), "  " * depth + name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=21, help="runs of each command (default 21)")
    parser.add_argument("--importtime", action="store_true", help="list the slowest imports of --help")
    args = parser.parse_args()

    env = clean_env()
    runs = commands()
    for command in runs.values():  # warm the file cache and the bytecode caches once
        timed(command, env)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, command in runs.items():
            times[name].append(timed(command, env))

    print(f"{args.rounds} rounds, Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f}")
    medians = {name: statistics.median(values) for name, values in times.items()}
    baseline = medians['python -c "import typer"']
    for name, median in medians.items():
        spread = f"{min(times[name]) * 1000:.0f}–{max(times[name]) * 1000:.0f}"
        print(
            f"  {name:<28} median {median * 1000:6.0f} ms  (range {spread} ms)  {median / baseline:4.2f} × typer"
        )
    ratio = medians["medallion --help"] / baseline
    verdict = "within" if ratio <= TARGET_RATIO else "ABOVE"
    print(f"medallion --help: {ratio:.2f} × `import typer` ({verdict} the target of {TARGET_RATIO:g})")

    if args.importtime:
        print("slowest imports of medallion --help (cumulative):")
        for micros, module in slowest_imports(runs["medallion --help"], env):
            print(f"  {micros / 1000:7.1f} ms  {module}")


if __name__ == "__main__":
    main()
