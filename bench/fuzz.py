"""The engine's stateful fuzz target, long form: ``tests/test_engine_fuzz.py``'s machine until at
least ``--steps`` checked steps (default 100,000) have run against a loopback echo server, then
the figures.

A checked step is one whose rule did something that was checked: an answer its own assertions
looked at, or input, time or a peer's event that the step-wide invariants then covered. Rules
drawn that found nothing to do are reported, not counted.
A finding stops the run with hypothesis's shortest failing sequence of steps and exit status 1.

    python bench/fuzz.py [--steps N] [--examples-per-run N] [--steps-per-example N]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from atmodem.lab import EchoServer  # noqa: E402
from test_engine_fuzz import ANSWER, INPUT, EngineMachine, run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000, help="stop once this many checked steps have run")
    parser.add_argument("--examples-per-run", type=int, default=500, help="examples per hypothesis run")
    parser.add_argument("--steps-per-example", type=int, default=100, help="hypothesis' stateful_step_count")
    args = parser.parse_args()
    steps = EngineMachine.steps
    server = EchoServer()
    started = time.monotonic()
    runs = 0
    try:
        while steps.total() < args.steps:
            run(server.port, examples=args.examples_per_run, steps_per_example=args.steps_per_example)
            runs += 1
            print(f"run {runs}: {steps.total():,} checked steps of {sum(steps.drawn.values()):,} drawn, "
                  f"{EngineMachine.examples:,} examples, {time.monotonic() - started:.0f} s", flush=True)
    except Exception as failure:
        print(f"FINDING after {steps.total():,} checked steps: {failure!r}", flush=True)
        raise
    finally:
        server.close()
    seconds = time.monotonic() - started
    drawn = sum(steps.drawn.values())
    print(f"\n{steps.total():,} checked steps ({steps.total(ANSWER):,} with an answer checked, "
          f"{steps.total(INPUT):,} input only) of {drawn:,} rules drawn, in {EngineMachine.examples:,} examples, "
          f"{seconds:.1f} s ({steps.total() / seconds:,.0f} checked steps/s); findings: 0")
    print(f"  {'rule':<22} {'drawn':>9} {'answer':>9} {'input':>9} {'nothing':>9}")
    for name, count in steps.drawn.most_common():
        answer, given = steps.checked[name, ANSWER], steps.checked[name, INPUT]
        print(f"  {name:<22} {count:>9,} {answer:>9,} {given:>9,} {count - answer - given:>9,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
