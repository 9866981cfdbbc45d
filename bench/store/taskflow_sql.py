"""Runs a linear flow of N trivial tasks in OpenStack TaskFlow with its SQL
persistence backend on a SQLite file and prints a JSON line.

Usage: python3 taskflow_sql.py N PATH
Every task's states are saved through SQLAlchemy, as a durable TaskFlow
deployment does; the timed part loads the engine and runs the flow.
"""
import contextlib
import json
import resource
import sys
import time
import uuid

from taskflow import engines, task
from taskflow.patterns import linear_flow as lf
from taskflow.persistence import backends, models


class Trivial(task.Task):
    def execute(self):
        return None


def main():
    n, path = int(sys.argv[1]), sys.argv[2]
    backend = backends.fetch({"connection": "sqlite:///" + path})
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
    flow = lf.Flow("linear")
    for i in range(n):
        flow.add(Trivial("t%d" % i))
    book = models.LogBook("bench")
    detail = models.FlowDetail("linear", uuid.uuid4().hex)
    book.add(detail)
    with contextlib.closing(backend.get_connection()) as conn:
        conn.save_logbook(book)
    start = time.perf_counter()
    engine = engines.load(flow, flow_detail=detail, book=book, backend=backend, engine="serial")
    engine.run()
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "tasks": n, "maxrss_kb": rss}))


if __name__ == "__main__":
    main()
