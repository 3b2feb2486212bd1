"""The service's worker sends RQ's heartbeat at most once a second, never letting its key
expire sooner than RQ would, and shows the state RQ would show."""

import threading

from rq import Queue, SimpleWorker, get_current_job
from rq.serializers import JSONSerializer

from approver.process import worker

JOBS = 40
SEEN = "test:heartbeat:seen"


def look() -> None:
    """A job: what anyone reading RQ's worker key sees while it runs."""
    job = get_current_job()
    key = f"rq:worker:{job.worker_name}"
    conn = job.connection
    conn.rpush(SEEN, f"{conn.ttl(key)} {conn.hget(key, 'state').decode()}")


class Stock(worker.Worker):
    heartbeat = SimpleWorker.heartbeat
    set_state = SimpleWorker.set_state


def _burst(conn, cls) -> tuple[list[tuple[int, str]], list[list[bytes]]]:
    """Run JOBS look() jobs on a worker of `cls`; what the jobs saw and the commands sent to
    its worker key."""
    conn.delete(SEEN)
    queue = Queue("test-heartbeat", connection=conn, serializer=JSONSerializer)
    for i in range(JOBS):
        queue.enqueue("tests.test_worker_heartbeat.look", job_id=f"look-{i}", result_ttl=0)
    w = cls([queue], connection=conn, serializer=JSONSerializer, worker_ttl=worker.WORKER_TTL)
    sent, stop, ready = [], threading.Event(), threading.Event()

    def listen():
        with conn.monitor() as monitor:
            ready.set()
            while not stop.is_set():
                line = monitor.next_command()["command"]
                if w.key in line:
                    sent.append(line.split())

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    ready.wait(5)
    w.work(burst=True, with_scheduler=False)
    stop.set()
    conn.rpush(SEEN, "end")  # wakes the monitor after the worker's last command
    t.join(5)
    seen = [line.decode().split() for line in conn.lrange(SEEN, 0, -1)[:-1]]
    return [(int(ttl), state) for ttl, state in seen], sent


def _beats(sent) -> int:
    return sum(1 for c in sent if c[0].upper() == "HSET" and "last_heartbeat" in c
               and len(c) == 4)


def test_the_heartbeat_is_sent_at_most_once_a_second_and_covers_as_long_as_rqs(redis_conn):
    stock_seen, stock_sent = _burst(redis_conn, Stock)
    seen, sent = _burst(redis_conn, worker.Worker)

    assert len(seen) == len(stock_seen) == JOBS
    # RQ's own: four or five beats a job. Ours: a burst of 40 tiny jobs takes a second or
    # two, one beat a second at most, and one at the start.
    assert _beats(stock_sent) >= 4 * JOBS
    assert _beats(sent) < _beats(stock_sent) / 4
    # While a job runs, the worker's key lives at least as long as RQ's beat before it
    # made it live (its ttl + 60 s, less the second a skipped beat may be late), and the
    # worker shows as busy, as RQ's does.
    least = min(ttl for ttl, _ in stock_seen)
    assert least >= worker.WORKER_TTL + 60 - 1
    assert all(ttl >= least - 1 for ttl, _ in seen), seen
    assert {state for _, state in seen} == {state for _, state in stock_seen} == {"busy"}
    # Between jobs it shows as idle (at least once, and it ended idle before its death).
    states = [c[3] for c in sent if c[0].upper() == "HSET" and c[2] == "state"]
    assert "idle" in states and "busy" in states
