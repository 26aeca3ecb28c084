#!/usr/bin/env python3
"""demo.py - `make demo`: run each example pair under the scenario that shows
its bug and print what happened, as a table.

    python3 tests/examples/demo.py [--build DIR]

Exits 0 when every wrong version was caught and every right version passed
(with injections: a pass with none proves nothing), 1 otherwise.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wbexamples as wb  # noqa: E402


def table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(" | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(wb.ROOT, "build"))
    args = parser.parse_args()

    rows = [("example", "scenario", "wrong version", "right version", "verdict")]
    problems = []
    for ex in wb.EXAMPLES:
        print(f"running {ex.name} ...", file=sys.stderr, flush=True)
        runs = {v: wb.run_under(ex.argv(args.build, v), ex.scenario, ex.rules, build=args.build)
                for v in ("wrong", "right")}
        why_wrong = wb.judge_wrong(ex, runs["wrong"])
        why_right = wb.judge_right(ex, runs["right"])
        mark = "caught" if not (why_wrong or why_right) else "NOT SHOWN"
        rows.append((ex.name, ex.shown_under, wb.describe(ex, runs["wrong"]),
                     wb.describe(ex, runs["right"]), mark))
        for variant, why in (("wrong", why_wrong), ("right", why_right)):
            if why:
                problems.append((f"{ex.name}_{variant} under {ex.shown_under}: {why}",
                                 runs[variant]))
        # what the wrong version relies on holds on Linux: not accused there
        for scenario in ex.wrong_passes:
            run = wb.run_under(ex.argv(args.build, "wrong"), scenario, build=args.build)
            why = wb.judge_right(ex, run)
            rows.append((ex.name, scenario, wb.describe(ex, run), "(Linux behaviour kept)",
                         "not accused" if not why else "ACCUSED"))
            if why:
                problems.append((f"{ex.name}_wrong under {scenario}: {why}", run))

    print(f"running {wb.ASYNCIO.name} under every scenario ...", file=sys.stderr, flush=True)
    scenarios = wb.builtin_scenarios()
    failed = []
    for scenario in scenarios:
        run = wb.run_under(wb.ASYNCIO.argv(args.build, None), scenario, build=args.build)
        kind, text = wb.outcome(run)
        if kind != "ok":
            failed.append(scenario)
            problems.append((f"{wb.ASYNCIO.name} under {scenario}: {text}", run))
    passed = len(scenarios) - len(failed)
    rows.append((wb.ASYNCIO.name, f"each of the {len(scenarios)} built-in", "(no wrong version)",
                 f"ok under {passed}/{len(scenarios)}" +
                 (f", FAILED: {', '.join(failed)}" if failed else ""),
                 "passed" if not failed else "FAILED"))

    print()
    print(table(rows))
    print()
    for ex in wb.EXAMPLES + [wb.ASYNCIO]:
        files = ex.source("{wrong,right}" if ex.has_wrong else None)
        print(f"  {ex.name + ':':15} {ex.bug:43} {files}")
    print()
    for what, run in problems:
        print(f"PROBLEM: {what}")
        for line in run.transcript():
            print("    " + line)
    if problems:
        print(f"{len(problems)} example run(s) did not show what they should.")
        return 1
    print("Every wrong version was caught, every right version passed "
          "(the [N injected] counts are from wouldblock's JSON reports).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
