"""Attributes and queries on them (docs/ATTRIBUTES.md) from Python: written with a put,
returned by lookup and ls, found by find (blocking and asyncio), changed and removed with
the object, and the same as the CLI's (`ringblob find` finds what Python wrote)."""

from __future__ import annotations

import asyncio

import pytest

import ringblob
from conftest import cli


@pytest.fixture
def client(node):
    return ringblob.Client(node.addr, namespace="attrs-py")


def names(found):
    return sorted(f.name for f in found)


def test_attributes_are_stored_returned_and_found(client, node):
    client.put("a.jpg", b"one", attrs={"camera": "x100", "year": 2024})
    client.put("b.jpg", b"two", attrs={"camera": "gr3", "year": 2024, "lens": "28mm"})
    client.put("c.jpg", b"three")
    assert dict(client.lookup("a.jpg").attrs) == {"camera": "x100", "year": 2024}
    assert client.lookup("c.jpg").attrs == []
    listed = {e.name: dict(e.attrs) for e in client.ls()}
    assert listed["b.jpg"]["lens"] == "28mm"

    assert names(client.find("camera=x100")) == ["a.jpg"]
    assert names(client.find("year=2024")) == ["a.jpg", "b.jpg"]
    assert names(client.find(["lens=*"])) == ["b.jpg"]
    assert names(client.find("year=2024 !lens")) == ["a.jpg"]
    assert names(client.find("camera=x100 or lens=*")) == ["a.jpg", "b.jpg"]
    assert names(client.find("camera=x100 year=*", exact=True)) == ["a.jpg"]
    found = list(client.find("year=2024"))
    assert found[0].size > 0 and dict(found[0].attrs)["year"] == 2024

    # The CLI finds what Python wrote, and the reverse.
    out = cli(node.addr, "find", "attrs-py", "camera=x100").stdout.decode()
    assert out.split() == ["a.jpg"]
    cli(node.addr, "--namespace", "attrs-py", "put", "d.jpg", "-", "--attr", "camera=x100",
        input=b"four")
    assert names(client.find("camera=x100")) == ["a.jpg", "d.jpg"]


def test_attributes_change_and_go_with_the_object(client):
    client.put("m.jpg", b"x", attrs={"state": "draft"})
    assert names(client.find("state=draft")) == ["m.jpg"]
    client.put("m.jpg", b"y", attrs={"state": "final"})
    assert names(client.find("state=draft")) == []
    assert names(client.find("state=final")) == ["m.jpg"]
    client.remove("m.jpg")
    assert names(client.find("state=final")) == []


def test_pages_and_limits(client):
    for i in range(25):
        client.put(f"p{i:02}", b"v", attrs={"batch": "paged"})
    assert len(list(client.find("batch=paged", page_size=7))) == 25
    assert len(list(client.find("batch=paged", limit=10))) == 10
    assert client.last_find_token is not None
    rest = list(client.find("batch=paged", after=client.last_find_token))
    assert len(rest) == 15


def test_bad_attributes_and_queries_are_refused(client):
    with pytest.raises(TypeError):
        client.put("bad", b"v", attrs={"x": 1.5})
    with pytest.raises(ValueError):
        client.put("bad", b"v", attrs={"a=b": "c"})
    with pytest.raises(ValueError):
        list(client.find("not a query"))
    with pytest.raises(ValueError):
        list(client.find(""))


def test_async_find(node):
    async def run():
        async with ringblob.AsyncClient(node.addr, namespace="attrs-async") as c:
            await c.put("q1", b"v", attrs={"k": "yes"})
            await c.put("q2", b"v", attrs={"k": "no"})
            return [f.name async for f in c.find("k=yes")]

    assert asyncio.run(run()) == ["q1"]
