#!/usr/bin/env python3
"""suite.py - the examples as a TAP test suite (run by `make test`).

For every pair in examples/: the wrong version, under the scenario that
shows its bug, fails the way it should (so an example that stops showing
its bug fails the build), and the right version passes there with
injections. Where a wrong version relies on undocumented Linux behaviour
that the other scenarios keep (epoll_echo: a short read means drained), it
must pass under those, with injections: a scenario that accused it there
would be a false alarm. Then every right version, asyncio_echo included, must pass
under every built-in scenario: they keep the kernel's contract, so a
correct program that fails under one of them is a library bug (or a wrong
"right" example).

    python3 tests/examples/suite.py [--build DIR] [--filter REGEX] [--musl]

--musl (or WB_MUSL=1): DIR is a musl build (make test-musl), whose library
only musl-linked programs can load: the C examples alone.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wbexamples as wb  # noqa: E402


def cases(build, musl=False):
    """(name, thunk) pairs; a thunk runs its case and returns (why or None, run)."""
    examples = [ex for ex in wb.EXAMPLES if ex.lang == "c" or not musl]
    for ex in examples:
        def wrong(ex=ex):
            run = wb.run_under(ex.argv(build, "wrong"), ex.scenario, ex.rules, build=build)
            return wb.judge_wrong(ex, run), run

        def right(ex=ex):
            run = wb.run_under(ex.argv(build, "right"), ex.scenario, ex.rules, build=build)
            return wb.judge_right(ex, run), run

        yield f"{ex.name}_wrong is caught under {ex.shown_under}", wrong
        yield f"{ex.name}_right passes under {ex.shown_under}", right
        for scenario in ex.wrong_passes:
            def wrong_faithful(ex=ex, scenario=scenario):
                run = wb.run_under(ex.argv(build, "wrong"), scenario, build=build)
                return wb.judge_right(ex, run), run

            yield (f"{ex.name}_wrong passes under {scenario} (Linux behaviour it relies on "
                   f"is kept)"), wrong_faithful
    for scenario in wb.builtin_scenarios():
        for ex in examples + ([] if musl else [wb.ASYNCIO]):
            if scenario == ex.scenario:
                continue  # run above, with more checks
            variant = "right" if ex.has_wrong else None
            stem = f"{ex.name}_right" if ex.has_wrong else ex.name

            def right_anywhere(ex=ex, variant=variant, scenario=scenario):
                run = wb.run_under(ex.argv(build, variant), scenario, build=build)
                return wb.judge_right(ex, run, own_scenario=False), run

            yield f"{stem} passes under {scenario}", right_anywhere


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(wb.ROOT, "build"))
    parser.add_argument("--filter", default=os.environ.get("EXAMPLES_FILTER", ""),
                        help="run only the cases whose names match this regex")
    parser.add_argument("--musl", action="store_true", default=os.environ.get("WB_MUSL") == "1",
                        help="a musl build: the C examples only")
    args = parser.parse_args()

    selected = [(n, t) for n, t in cases(args.build, args.musl) if re.search(args.filter, n)]
    print(f"1..{len(selected)}", flush=True)
    failed = 0
    for number, (name, thunk) in enumerate(selected, 1):
        why, run = thunk()
        kind, text = wb.outcome(run)
        if why is None:
            print(f"ok {number} - {name}: {wb.describe_short(run, kind, text)}", flush=True)
            continue
        failed += 1
        print(f"not ok {number} - {name}", flush=True)
        print(f"# {why}")
        for line in run.transcript():
            print(f"#   {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
