"""A 200 MiB value streamed up and down from Python with the process's peak memory
bounded (measured in a child process, so the test runner's own memory does not count)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import hashlib, io, json, sys
    import ringblob

    def peak_mib():
        # VmHWM: this process image's peak RSS (ru_maxrss would start from the parent's,
        # which it keeps across fork and exec).
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    addr, size = sys.argv[1], int(sys.argv[2])

    class Generated(io.RawIOBase):
        # Deterministic bytes made as they are read: the source itself holds no value.
        def __init__(self, size):
            self.left, self.n, self.h = size, 0, hashlib.sha256()
        def readable(self):
            return True
        def read(self, want=-1):
            want = self.left if want is None or want < 0 else min(want, self.left)
            out = bytearray()
            while len(out) < want:
                block = hashlib.sha256(self.n.to_bytes(8, "little")).digest() * 2048
                self.n += 1
                out += block[: want - len(out)]
            self.left -= len(out)
            self.h.update(out)
            return bytes(out)

    c = ringblob.Client(addr, namespace="stream")
    after_connect = peak_mib()
    src = Generated(size)
    stored = c.upload("big", src)
    after_upload = peak_mib()
    meta = c.lookup("big")
    down = hashlib.sha256()
    with c.open("big") as f:
        while True:
            piece = f.read(4 << 20)
            if not piece:
                break
            down.update(piece)
    print(json.dumps({
        "stored": stored, "size": meta.size, "chunks": meta.chunks,
        "same": down.digest() == src.h.digest(),
        "peak_rss_mib": peak_mib(),
        "peak_rss_mib_after_upload": after_upload,
        "peak_rss_mib_after_connect": after_connect,
    }))
    """
)


def test_200_mib_streamed_with_bounded_memory(node):
    size = 200 << 20
    out = subprocess.run([sys.executable, "-c", CHILD, node.addr, str(size)],
                         capture_output=True, timeout=600)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    r = json.loads(out.stdout)
    assert r["stored"] == size and r["size"] == size
    assert r["chunks"] and r["chunks"] > 1
    assert r["same"], "downloaded bytes differ from the uploaded ones"
    # Over what the connected client took: a few parts in flight (8 MiB each, measured
    # ~50 MiB in all), never the value itself (200 MiB).
    grown = r["peak_rss_mib"] - r["peak_rss_mib_after_connect"]
    assert grown < 96, json.dumps(r)
    print(json.dumps(r))
