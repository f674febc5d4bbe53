"""TLS: a node with a certificate is reached with `tls=`; a client without TLS, or trusting
another CA, is refused (certificates made with the openssl command line)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import ringblob

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
            "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return d / f"{name}.pem"


def issue(d, ca, name):
    (d / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    return d / f"{name}.pem", d / f"{name}.key"


def test_tls(fresh_nodes, tmp_path):
    ca = make_ca(tmp_path, "ca")
    other_ca = make_ca(tmp_path, "other")
    cert, key = issue(tmp_path, "ca", "node")
    n = fresh_nodes("tls", extra=["--tls-cert", str(cert), "--tls-key", str(key)])
    c = ringblob.Client(n.addr, namespace="tls", tls={"ca": ca})
    c.put("a", b"over tls")
    assert c.get("a") == b"over tls"
    assert ringblob.Client(n.addr, namespace="tls", tls=str(ca)).get("a") == b"over tls"
    with pytest.raises(ringblob.RingblobError):
        ringblob.Client(n.addr, namespace="tls", timeout=5).get("a")
    with pytest.raises(ringblob.RingblobError):
        ringblob.Client(n.addr, namespace="tls", tls={"ca": other_ca}, timeout=5).get("a")
