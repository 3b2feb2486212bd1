"""With Redis replicas (Sentinel), Tyk is called only once the decision record is on one."""

import signal

import pytest

from approver import state as st
from approver.pipeline import decide, runtime
from approver.process.embedded_redis import EmbeddedRedis
from approver.state import connection
from tests.conftest import wait_for

ALICE, FREE = "alice@acme.partner.example", "64b0000000000000000000b1"
APPROVE = "/api/portal/requests/approve/"


@pytest.fixture
def replicated_redis(tmp_path):
    """A master and its replica (replication starts at once: no diskless-sync delay)."""
    for name in ("m", "r"):
        (tmp_path / name).mkdir()
    master = EmbeddedRedis(directory=tmp_path / "m", appendonly=False,
                           args=("--repl-diskless-sync-delay", "0")).start()
    replica = EmbeddedRedis(directory=tmp_path / "r", appendonly=False,
                            args=("--replicaof", "127.0.0.1", str(master.port))).start()
    # Until the replica has connected, "no replica to promote" is true as well: wait for it,
    # so the tests below stop a replica the master counts on.
    probe = connection.connect(master.url)
    assert wait_for(lambda: probe.info("replication").get("connected_slaves"), timeout=15)
    probe.close()
    yield master, replica
    replica.close()
    master.close()


def test_a_write_is_safe_once_a_replica_has_it_or_when_there_is_none(replicated_redis):
    master, replica = replicated_redis
    store = st.Store(connection.connect(master.url))
    assert wait_for(store.replicated, timeout=15)
    replica.process.send_signal(signal.SIGSTOP)  # connected, but acknowledging nothing
    try:
        assert not store.replicated(timeout=0.2)
    finally:
        replica.process.send_signal(signal.SIGCONT)
    replica.close()
    # No replica left (the master's only one died): nothing could be promoted over a write.
    assert wait_for(store.replicated, timeout=15)


def test_while_no_replica_acknowledges_tyk_is_not_called_and_the_decision_is_kept(
        settings, sandbox, replicated_redis):
    # Sentinel configured, a replica connected that acknowledges nothing: the decision is
    # recorded ("applying", resumed later) and Tyk is not called.
    master, replica = replicated_redis
    rt = runtime.Runtime(settings.with_(redis_sentinels=(("127.0.0.1", 1),),
                                        redis_sentinel_master="mymaster"))
    rt.redis = connection.connect(master.url)
    assert wait_for(rt.store.replicated, timeout=15)
    replica.process.send_signal(signal.SIGSTOP)
    request = sandbox.app.sandbox.create_key_request(ALICE, [FREE], {"use_case": "x"})
    with pytest.raises(decide.ReplicaBehind):
        decide.run(rt, request["id"], "webhook")
    assert sandbox.app.sandbox.calls(method="PUT", path=APPROVE) == []
    assert rt.store.state(request["id"])["state"] == st.APPLYING
    assert rt.store.unfinished() == [request["id"]]
    replica.process.send_signal(signal.SIGCONT)
