"""Runs one benchmark shape in OpenStack TaskFlow and prints a JSON line.

Usage: python3 taskflow_shapes.py SHAPE N
Shapes: linear, unordered, graph, nested (N = K), revert (N tasks, failure at N/2).
The timed part builds the flow, loads (compiles) the engine and runs it,
like the Go side.
"""
import json
import resource
import sys
import time

from taskflow import engines, states, task
from taskflow.patterns import graph_flow as gf
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf

WORKERS = 8


class Trivial(task.Task):
    def execute(self):
        return None


class Produce(task.Task):
    def execute(self, **kwargs):
        return 1


class Boom(Exception):
    pass


FAILED_AT = [0.0]


class Fail(task.Task):
    def execute(self):
        FAILED_AT[0] = time.perf_counter()
        raise Boom("task 50 fails")


def build(shape, n):
    if shape == "linear":
        f = lf.Flow("linear")
        for i in range(n):
            f.add(Trivial("t%d" % i))
        return f, "serial"
    if shape == "unordered":
        f = uf.Flow("unordered")
        for i in range(n):
            f.add(Trivial("t%d" % i))
        return f, "parallel"
    if shape == "graph":
        f = gf.Flow("graph")
        for i in reversed(range(n)):
            req = ["v%d" % (i - 1)] if i > 0 else []
            f.add(Produce("t%d" % i, provides="v%d" % i, requires=req))
        return f, "serial"
    if shape == "nested":
        f = lf.Flow("nested")
        for j in range(n):
            u = uf.Flow("u%d" % j)
            for i in range(10):
                u.add(Trivial("t%d_%d" % (j, i)))
            f.add(u)
        return f, "parallel"
    if shape == "revert":
        f = lf.Flow("revert")
        for i in range(n):
            f.add(Fail("t%d" % i) if i == n // 2 - 1 else Trivial("t%d" % i))
        return f, "serial"
    raise SystemExit("unknown shape " + shape)


def main():
    shape, n = sys.argv[1], int(sys.argv[2])
    reverted_at = [0.0]

    def on_flow(state, details):
        if state == states.REVERTED:
            reverted_at[0] = time.perf_counter()

    start = time.perf_counter()
    f, kind = build(shape, n)
    if kind == "parallel":
        e = engines.load(f, engine="parallel", max_workers=WORKERS)
    else:
        e = engines.load(f, engine="serial")
    e.notifier.register(states.REVERTED, on_flow)
    failed = False
    try:
        e.run()
    except Boom:
        failed = True
    end = time.perf_counter()
    out = {"seconds": end - start, "failed": failed,
           "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    if shape == "revert":
        out["revert_seconds"] = reverted_at[0] - FAILED_AT[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
