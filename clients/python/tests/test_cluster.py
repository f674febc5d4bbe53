"""Two replica groups of one node each: W=all writes land in both groups, reads fall over
when a group's node is killed, read repair fixes a stale group, and a write that cannot
reach its quorum says which groups failed."""

from __future__ import annotations

import os
import time

import pytest

import ringblob
from conftest import wait_converged


@pytest.fixture
def two_groups(fresh_nodes):
    g1 = fresh_nodes("g1", group=1)
    g2 = fresh_nodes("g2", group=2, seeds=[g1.addr])
    wait_converged([g1, g2])
    return g1, g2


def alone(node, group):
    """A client that reads one group only (to see what that group holds)."""
    return ringblob.Client(node.addr, namespace="cl", groups=[group], w="one", timeout=10)


def test_w_all_lands_in_both_groups(two_groups):
    g1, _ = two_groups
    c = ringblob.Client(g1.addr, namespace="cl", groups=[1, 2], w="all")
    data = os.urandom(50_000)
    assert c.put("both", data) == len(data)
    for g in (1, 2):
        assert alone(g1, g).get("both") == data, f"group {g}"
    assert [e.name for e in c.ls("both")] == ["both"]
    c.remove("both")
    for g in (1, 2):
        assert not alone(g1, g).exists("both"), f"group {g}"


def test_reads_fall_over_and_quorum_failures_name_groups(two_groups):
    g1, g2 = two_groups
    c = ringblob.Client(g1.addr, namespace="cl", groups=[2, 1], w="all", timeout=10)
    c.put("over", b"still here")
    g2.kill()
    deadline = time.monotonic() + 60
    while True:  # the group-2 read fails one way or another; group 1 answers
        try:
            assert c.get("over") == b"still here"
            break
        except ringblob.RingblobError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    with pytest.raises(ringblob.QuorumNotReached) as e:
        c.put("needs-both", b"x")
    assert 1 in e.value.succeeded
    assert 2 in e.value.failed and e.value.failed[2]
    one = ringblob.Client(g1.addr, namespace="cl", groups=[1, 2], w="one", timeout=10)
    assert one.put("needs-one", b"y") == 1


def test_read_repair_fixes_a_stale_group(two_groups):
    g1, _ = two_groups
    both = ringblob.Client(g1.addr, namespace="cl", groups=[1, 2], w="all")
    both.put("stale", b"version 1")
    alone(g1, 1).put("stale", b"version 2, group 1 only")
    assert alone(g1, 2).get("stale") == b"version 1"
    # The newest replica wins, and the stale group is repaired by the read.
    assert both.get("stale") == b"version 2, group 1 only"
    deadline = time.monotonic() + 10
    while alone(g1, 2).get("stale") != b"version 2, group 1 only":
        assert time.monotonic() < deadline, "group 2 was not repaired"
        time.sleep(0.2)


class Unsized:
    """A readable source that cannot tell its size (a pipe)."""

    def __init__(self, data):
        self.data, self.at = data, 0

    def read(self, n=-1):
        piece = self.data[self.at:self.at + n]
        self.at += len(piece)
        return piece


def test_streamed_uploads_with_groups_are_plain_values_in_every_group(two_groups):
    g1, g2 = two_groups
    c = ringblob.Client(g1.addr, namespace="cl", groups=[1, 2], w="all")
    data = os.urandom(20 << 20)  # past one part of unknown size: an object without groups
    assert c.upload("streamed", Unsized(data)) == len(data)
    assert c.get("streamed") == data
    for g in (1, 2):
        assert alone(g1, g).get("streamed") == data, f"group {g}"
        assert alone(g1, g).lookup("streamed").chunks is None
    with c.open("streamed") as f:
        f.seek(5 << 20)
        assert f.read(1 << 20) == data[5 << 20:6 << 20]
    assert c.bulk_get(["streamed", "nothing"]) == {"streamed": data, "nothing": None}
    c.remove("streamed")
    for g in (1, 2):
        assert not alone(g1, g).exists("streamed")
    g2.kill()
    with pytest.raises(ringblob.QuorumNotReached) as e:
        ringblob.Client(g1.addr, namespace="cl", groups=[1, 2], w="all", timeout=10).upload(
            "streamed", Unsized(b"x" * 1000))
    assert 1 in e.value.succeeded and 2 in e.value.failed


def test_lookup_and_exists_take_the_newest_group(two_groups):
    g1, _ = two_groups
    both = ringblob.Client(g1.addr, namespace="cl", groups=[1, 2], w="one")
    ringblob.Client(g1.addr, namespace="cl", groups=[1, 2], w="all").put("n", b"old")
    alone(g1, 2).put("n", b"newer in group 2")
    m = both.lookup("n")
    assert (m.group, m.size) == (2, len(b"newer in group 2"))
    alone(g1, 2).remove("n")
    assert not both.exists("n"), "a newer remove in group 2 wins over group 1's value"
