"""A node with access keys: the right key works, a wrong one is Unauthorized, a key's
namespaces are enforced (the node checks them; Python only proves the key)."""

from __future__ import annotations

import subprocess

import pytest

import ringblob
from conftest import NODE_BIN


def add_key(keys_file, role, namespaces=()):
    args = [str(NODE_BIN), "keys", "add", "--role", role, "--keys-file", str(keys_file)]
    for ns in namespaces:
        args += ["--namespace", ns]
    out = subprocess.run(args, capture_output=True, check=True, timeout=60)
    return out.stdout.decode().strip().splitlines()[-1].strip()


def test_keys(fresh_nodes, root):
    keys_file = root / "py-keys.json"
    writer = add_key(keys_file, "write", ["photos"])
    reader = add_key(keys_file, "read")
    n = fresh_nodes("keyed", extra=["--keys-file", str(keys_file)])
    w = ringblob.Client(n.addr, namespace="photos", key=writer)
    w.put("a", b"secret photo")
    assert ringblob.Client(n.addr, namespace="photos", key=reader).get("a") == b"secret photo"
    with pytest.raises(ringblob.Unauthorized):
        ringblob.Client(n.addr, namespace="photos", key=reader).put("b", b"x")
    with pytest.raises(ringblob.Unauthorized):
        ringblob.Client(n.addr, namespace="docs", key=writer).put("b", b"x")
    key_id = writer.split(":")[0]
    with pytest.raises(ringblob.Unauthorized):
        ringblob.Client(n.addr, namespace="photos", key=f"{key_id}:{'0' * 64}").get("a")
    with pytest.raises(ringblob.Unauthorized):
        ringblob.Client(n.addr, namespace="photos").get("a")
