"""The engine's stateful fuzz target, long form: ``tests/test_engine_fuzz.py``'s machine for at least
``--steps`` generated steps (default 100,000) against a loopback echo server, then the figures.

A finding stops the run with hypothesis's shortest failing sequence of steps and exit status 1.

    python bench/fuzz.py [--steps N] [--examples-per-run N] [--steps-per-example N]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from atmodem.lab import EchoServer  # noqa: E402
from test_engine_fuzz import EngineMachine, run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000, help="stop once this many steps have run")
    parser.add_argument("--examples-per-run", type=int, default=500, help="examples per hypothesis run")
    parser.add_argument("--steps-per-example", type=int, default=100, help="hypothesis' stateful_step_count")
    args = parser.parse_args()
    server = EchoServer()
    started = time.monotonic()
    runs = 0
    try:
        while sum(EngineMachine.steps.values()) < args.steps:
            run(server.port, examples=args.examples_per_run, steps_per_example=args.steps_per_example)
            runs += 1
            done = sum(EngineMachine.steps.values())
            print(f"run {runs}: {done:,} steps, {EngineMachine.examples:,} examples, "
                  f"{time.monotonic() - started:.0f} s", flush=True)
    except Exception as failure:
        print(f"FINDING after {sum(EngineMachine.steps.values()):,} steps: {failure!r}", flush=True)
        raise
    finally:
        server.close()
    seconds = time.monotonic() - started
    steps = sum(EngineMachine.steps.values())
    print(f"\n{steps:,} stateful steps in {EngineMachine.examples:,} examples, {seconds:.1f} s "
          f"({steps / seconds:,.0f} steps/s); findings: 0")
    for name, count in EngineMachine.steps.most_common():
        print(f"  {name:<22} {count:>9,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
