"""The `aws` CLI (`pip install awscli`) against the gateway: multipart cp, ls, sync."""

import hashlib
import os
import random
import shutil
import subprocess
import time

import pytest

AWS = shutil.which("aws")
if AWS is None:
    pytest.skip("the aws CLI is not on PATH (pip install awscli)", allow_module_level=True)

MiB = 1 << 20


@pytest.fixture
def aws(cluster, tmp_path):
    """Runs `aws ARGS... --endpoint-url <first node>` as the write key; returns stdout."""
    config = tmp_path / "aws-config"
    config.write_text("[default]\ns3 =\n    addressing_style = path\n")
    key = cluster.keys["write"]
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith("AWS_") or k == "AWS_CA_BUNDLE"
    }
    env.update(
        AWS_ACCESS_KEY_ID=key.id,
        AWS_SECRET_ACCESS_KEY=key.s3_secret,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_PAGER="",
    )

    def run(*args, endpoint=None):
        cmd = [AWS, *map(str, args), "--endpoint-url", endpoint or cluster.endpoint]
        out = subprocess.run(cmd, capture_output=True, env=env, timeout=600)
        if out.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {out.returncode}\n"
                f"stdout: {out.stdout.decode(errors='replace')}\n"
                f"stderr: {out.stderr.decode(errors='replace')}"
            )
        return out.stdout.decode()

    return run


def test_cp_multipart_up_and_down_and_ls(cluster, aws, bucket_name, tmp_path):
    aws("s3", "mb", f"s3://{bucket_name}")
    data = random.Random(12).randbytes(12 * MiB)
    src = tmp_path / "twelve.bin"
    src.write_bytes(data)

    aws("s3", "cp", "--no-progress", src, f"s3://{bucket_name}/dir/twelve.bin")
    s3 = cluster.client()
    assert s3.head_object(Bucket=bucket_name, Key="dir/twelve.bin")["ContentLength"] == len(
        data
    )

    dst = tmp_path / "back.bin"
    aws("s3", "cp", "--no-progress", f"s3://{bucket_name}/dir/twelve.bin", dst)
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()

    # Through another node's gateway too.
    dst2 = tmp_path / "back2.bin"
    aws("s3", "cp", "--no-progress", f"s3://{bucket_name}/dir/twelve.bin", dst2,
        endpoint=cluster.endpoints[1])
    assert dst2.read_bytes() == data

    top = aws("s3", "ls", f"s3://{bucket_name}/")
    assert top.split() == ["PRE", "dir/"], top
    listing = aws("s3", "ls", f"s3://{bucket_name}/dir/")
    lines = listing.splitlines()
    assert len(lines) == 1, listing
    assert lines[0].split()[-2:] == [str(len(data)), "twelve.bin"], listing

    buckets = aws("s3", "ls")
    assert bucket_name in [line.split()[-1] for line in buckets.splitlines()], buckets

    # Above 8 MiB the CLI uploads in 8 MiB parts: two of them, and S3 names the part count
    # in the entity tag, listed or asked for.
    listed = s3.list_objects_v2(Bucket=bucket_name, Prefix="dir/")["Contents"]
    assert listed[0]["ETag"].endswith('-2"'), listed[0]["ETag"]
    head = s3.head_object(Bucket=bucket_name, Key="dir/twelve.bin")
    assert head["ETag"] == listed[0]["ETag"]


def test_sync_directory(cluster, aws, bucket_name, tmp_path):
    aws("s3", "mb", f"s3://{bucket_name}")
    src = tmp_path / "tree"
    (src / "nested" / "deeper").mkdir(parents=True)
    rng = random.Random(20)
    files = {}
    for i in range(20):
        rel = (
            f"file-{i:02d}.txt" if i < 10
            else f"nested/n-{i:02d}.dat" if i < 16
            else f"nested/deeper/d-{i:02d}.bin"
        )
        body = rng.randbytes(rng.randrange(0, 4000))
        (src / rel).write_bytes(body)
        files[rel] = body
    # Local times well before the upload, so the second sync's size-and-time comparison
    # does not depend on which second the files were written in.
    past = time.time() - 3600
    for rel in files:
        os.utime(src / rel, (past, past))

    first = aws("s3", "sync", "--no-progress", src, f"s3://{bucket_name}/synced")
    uploads = [line for line in first.splitlines() if line.startswith("upload:")]
    assert len(uploads) == 20, first

    listing = aws("s3", "ls", "--recursive", f"s3://{bucket_name}/synced/")
    lines = listing.splitlines()
    assert len(lines) == 20, listing
    listed = sorted(line.split(maxsplit=3)[3] for line in lines)
    assert listed == sorted(f"synced/{rel}" for rel in files)
    sizes = {line.split(maxsplit=3)[3]: int(line.split()[2]) for line in lines}
    assert sizes == {f"synced/{rel}": len(body) for rel, body in files.items()}

    s3 = cluster.client()
    for rel, body in files.items():
        got = s3.get_object(Bucket=bucket_name, Key=f"synced/{rel}")["Body"].read()
        assert got == body, rel

    again = aws("s3", "sync", "--no-progress", src, f"s3://{bucket_name}/synced")
    assert again.strip() == "", again

    # And back down: every file identical.
    down = tmp_path / "down"
    aws("s3", "sync", "--no-progress", f"s3://{bucket_name}/synced", down)
    for rel, body in files.items():
        assert (down / rel).read_bytes() == body, rel


def test_cp_and_mv_of_a_multipart_object_between_buckets(cluster, aws, bucket_name, tmp_path):
    """Past 8 MiB the CLI copies an object in parts (UploadPartCopy), as `mv` does."""
    other = bucket_name + "-to"
    aws("s3", "mb", f"s3://{bucket_name}")
    aws("s3", "mb", f"s3://{other}")
    data = random.Random(13).randbytes(19 * MiB + 7)
    src = tmp_path / "nineteen.bin"
    src.write_bytes(data)
    aws("s3", "cp", "--no-progress", src, f"s3://{bucket_name}/a/nineteen.bin")

    aws("s3", "cp", "--no-progress", f"s3://{bucket_name}/a/nineteen.bin",
        f"s3://{other}/b/copy.bin")
    aws("s3", "mv", "--no-progress", f"s3://{bucket_name}/a/nineteen.bin",
        f"s3://{other}/b/moved.bin")

    s3 = cluster.client()
    for key in ["b/copy.bin", "b/moved.bin"]:
        assert s3.get_object(Bucket=other, Key=key)["Body"].read() == data, key
    assert s3.list_objects_v2(Bucket=bucket_name).get("KeyCount") == 0
    assert s3.list_multipart_uploads(Bucket=other).get("Uploads", []) == []
