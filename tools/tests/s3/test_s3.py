"""The S3 API of the ringblob HTTP gateway, driven by boto3 against a two-group cluster."""

import hashlib
import random
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

MiB = 1 << 20


def data_of(seed, size):
    return random.Random(seed).randbytes(size)


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def error_of(call, *args, **kwargs):
    """Calls and returns (error code, HTTP status) of the ClientError it must raise."""
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    e = info.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"]


def keys_of(listing):
    return [o["Key"] for o in listing.get("Contents", [])]


# ---------------------------------------------------------------- objects


def test_put_get_range_head_delete(cluster, bucket):
    s3 = cluster.client()
    body = data_of(1, 100_000)
    put = s3.put_object(Bucket=bucket, Key="obj.bin", Body=body)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert put["ETag"].startswith('"') and put["ETag"].endswith('"')

    got = s3.get_object(Bucket=bucket, Key="obj.bin")
    assert got["Body"].read() == body
    assert got["ContentLength"] == len(body)
    assert got["ETag"] == put["ETag"]

    head = s3.head_object(Bucket=bucket, Key="obj.bin")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == put["ETag"]
    assert "LastModified" in head

    cases = [
        ("bytes=0-9", 0, 9),
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=99990-", 99990, 99999),
        ("bytes=-25", 99975, 99999),
        ("bytes=99000-200000", 99000, 99999),  # cut to the end
    ]
    for header, first, last in cases:
        r = s3.get_object(Bucket=bucket, Key="obj.bin", Range=header)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206, header
        assert r["ContentRange"] == f"bytes {first}-{last}/{len(body)}", header
        assert r["ContentLength"] == last - first + 1, header
        assert r["Body"].read() == body[first : last + 1], header

    code, status = error_of(
        s3.get_object, Bucket=bucket, Key="obj.bin", Range="bytes=100000-100010"
    )
    assert (code, status) == ("InvalidRange", 416)

    # Overwrite: the new value and a new entity tag.
    body2 = data_of(2, 1234)
    put2 = s3.put_object(Bucket=bucket, Key="obj.bin", Body=body2)
    assert put2["ETag"] != put["ETag"]
    assert s3.get_object(Bucket=bucket, Key="obj.bin")["Body"].read() == body2

    d = s3.delete_object(Bucket=bucket, Key="obj.bin")
    assert d["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(s3.get_object, Bucket=bucket, Key="obj.bin") == ("NoSuchKey", 404)
    assert error_of(s3.head_object, Bucket=bucket, Key="obj.bin") == ("404", 404)
    # Deleting what is not there is still 204, as S3.
    d = s3.delete_object(Bucket=bucket, Key="obj.bin")
    assert d["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_empty_object_and_key_names(cluster, bucket):
    s3 = cluster.client()
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    r = s3.get_object(Bucket=bucket, Key="empty")
    assert r["Body"].read() == b""
    assert r["ContentLength"] == 0
    names = [
        "dir/sub/leaf.txt",
        "with space.txt",
        "plus+sign",
        "unicode-\u00e9\u00e8-\u4e2d\u6587",
        "percent%20literal",
        "semi;colon,comma=eq&amp",
        "tilde~star*paren()",
    ]
    for i, name in enumerate(names):
        s3.put_object(Bucket=bucket, Key=name, Body=name.encode())
    for name in names:
        assert s3.get_object(Bucket=bucket, Key=name)["Body"].read() == name.encode()
    listed = keys_of(s3.list_objects_v2(Bucket=bucket))
    expected = sorted(names + ["empty"], key=lambda n: n.encode())
    assert listed == expected


def test_content_type_and_metadata_round_trip(cluster, bucket):
    s3 = cluster.client()
    meta = {"color": "blue", "owner-name": "alice", "n": "42"}
    s3.put_object(
        Bucket=bucket,
        Key="doc.txt",
        Body=b"hello metadata",
        ContentType="text/plain; charset=utf-8",
        Metadata=meta,
    )
    head = s3.head_object(Bucket=bucket, Key="doc.txt")
    assert head["ContentType"] == "text/plain; charset=utf-8"
    assert head["Metadata"] == meta
    got = s3.get_object(Bucket=bucket, Key="doc.txt")
    assert got["ContentType"] == "text/plain; charset=utf-8"
    assert got["Metadata"] == meta
    assert got["Body"].read() == b"hello metadata"

    # Overwriting replaces content type and metadata.
    s3.put_object(
        Bucket=bucket, Key="doc.txt", Body=b"{}", ContentType="application/json"
    )
    head = s3.head_object(Bucket=bucket, Key="doc.txt")
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {}


# ---------------------------------------------------------------- multipart


def test_multipart_upload_50mib(cluster, bucket):
    s3 = cluster.client()
    part_size = 5 * MiB
    data = data_of(50, 50 * MiB)
    key = "big/fifty.bin"

    up = s3.create_multipart_upload(
        Bucket=bucket,
        Key=key,
        ContentType="application/x-fifty",
        Metadata={"kind": "multipart"},
    )
    upload_id = up["UploadId"]
    assert up["Bucket"] == bucket and up["Key"] == key

    parts = []
    for number, offset in enumerate(range(0, len(data), part_size), start=1):
        r = s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data[offset : offset + part_size],
        )
        parts.append({"PartNumber": number, "ETag": r["ETag"]})
    assert len(parts) == 10

    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert [p["PartNumber"] for p in listed["Parts"]] == list(range(1, 11))
    assert [p["ETag"] for p in listed["Parts"]] == [p["ETag"] for p in parts]
    assert all(p["Size"] == part_size for p in listed["Parts"])

    # A second upload of another key, aborted.
    other = s3.create_multipart_upload(Bucket=bucket, Key="big/aborted.bin")
    other_id = other["UploadId"]
    assert other_id != upload_id
    s3.upload_part(
        Bucket=bucket, Key="big/aborted.bin", UploadId=other_id, PartNumber=1,
        Body=data_of(51, 1000),
    )

    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert {(u["Key"], u["UploadId"]) for u in uploads} == {
        (key, upload_id),
        ("big/aborted.bin", other_id),
    }

    r = s3.abort_multipart_upload(Bucket=bucket, Key="big/aborted.bin", UploadId=other_id)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [(key, upload_id)]
    code, status = error_of(
        s3.list_parts, Bucket=bucket, Key="big/aborted.bin", UploadId=other_id
    )
    assert (code, status) == ("NoSuchUpload", 404)
    # The aborted upload left no object.
    assert error_of(s3.head_object, Bucket=bucket, Key="big/aborted.bin")[1] == 404

    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": parts},
    )
    assert done["Key"] == key
    assert done["ETag"].endswith('-10"'), done["ETag"]

    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == len(data)
    assert head["ContentType"] == "application/x-fifty"
    assert head["Metadata"] == {"kind": "multipart"}

    got = s3.get_object(Bucket=bucket, Key=key)
    h = hashlib.sha256()
    for chunk in got["Body"].iter_chunks(1 * MiB):
        h.update(chunk)
    assert h.hexdigest() == sha256(data)

    # A range across a part boundary.
    first = part_size - 10
    r = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={first}-{first + 19}")
    assert r["Body"].read() == data[first : first + 20]

    listed = s3.list_objects_v2(Bucket=bucket)
    assert keys_of(listed) == [key]
    assert listed["Contents"][0]["Size"] == len(data)

    # The entity tag of the object is the one CompleteMultipartUpload answered, whether
    # listed, read or asked for.
    assert listed["Contents"][0]["ETag"] == done["ETag"]
    assert got["ETag"] == done["ETag"]
    assert head["ETag"] == done["ETag"]


def test_multipart_errors(cluster, bucket):
    s3 = cluster.client()
    key = "small-parts.bin"
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=1,
                        Body=data_of(60, 1000))["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=2,
                        Body=data_of(61, 1000))["ETag"]
    # Parts but the last must be at least 5 MiB.
    code, status = error_of(
        s3.complete_multipart_upload, Bucket=bucket, Key=key, UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1},
                                   {"PartNumber": 2, "ETag": e2}]},
    )
    assert (code, status) == ("EntityTooSmall", 400)
    # A wrong entity tag.
    code, status = error_of(
        s3.complete_multipart_upload, Bucket=bucket, Key=key, UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"0123"'}]},
    )
    assert (code, status) == ("InvalidPart", 400)
    # Out of order.
    code, status = error_of(
        s3.complete_multipart_upload, Bucket=bucket, Key=key, UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2},
                                   {"PartNumber": 1, "ETag": e1}]},
    )
    assert (code, status) == ("InvalidPartOrder", 400)
    # A single small part is fine (the last part may be small).
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]},
    )
    assert done["ETag"].endswith('-1"')
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data_of(60, 1000)
    # The upload is gone.
    code, status = error_of(
        s3.upload_part, Bucket=bucket, Key=key, UploadId=up, PartNumber=3, Body=b"x"
    )
    assert (code, status) == ("NoSuchUpload", 404)


# ---------------------------------------------------------------- listings


def _names_2000():
    names = [f"top-{i:03d}" for i in range(100)]
    for d in range(20):
        names += [f"d{d:02d}/file-{i:03d}" for i in range(90)]
        names += [f"d{d:02d}/sub/x-{i}" for i in range(5)]
    assert len(names) == 2000
    return names


def _put_all(s3, bucket, names):
    def put(name):
        s3.put_object(Bucket=bucket, Key=name, Body=name.encode())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, names))


def test_list_objects_v2_2000_names(cluster, bucket):
    s3 = cluster.client()
    names = _names_2000()
    random.Random(2000).shuffle(names)
    _put_all(s3, bucket, names)
    expected = sorted(names)

    # Everything, 250 at a time.
    paginator = s3.get_paginator("list_objects_v2")
    pages = list(paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 250}))
    listed = []
    for i, page in enumerate(pages):
        assert page["KeyCount"] == len(page.get("Contents", []))
        assert page["KeyCount"] <= 250
        assert page["IsTruncated"] == (i < len(pages) - 1)
        listed += keys_of(page)
    assert len(listed) == len(set(listed)), "duplicates"
    assert listed == expected
    assert len(pages) == 8
    sizes = {o["Key"]: o["Size"] for p in pages for o in p["Contents"]}
    assert all(sizes[n] == len(n.encode()) for n in names)

    # One page of at most 1000 (the default and the limit).
    first = s3.list_objects_v2(Bucket=bucket)
    assert first["KeyCount"] == 1000 and first["IsTruncated"] is True
    assert keys_of(first) == expected[:1000]
    second = s3.list_objects_v2(
        Bucket=bucket, ContinuationToken=first["NextContinuationToken"]
    )
    assert keys_of(second) == expected[1000:]
    assert second["IsTruncated"] is False
    assert "NextContinuationToken" not in second

    # A prefix.
    got = []
    for page in paginator.paginate(
        Bucket=bucket, Prefix="d07/", PaginationConfig={"PageSize": 40}
    ):
        got += keys_of(page)
    assert got == [n for n in expected if n.startswith("d07/")]
    assert len(got) == 95

    # The top level with a delimiter, pages small enough for common prefixes to span
    # several: max-keys counts keys and common prefixes together.
    contents, prefixes = [], []
    for page in paginator.paginate(
        Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 7}
    ):
        c = keys_of(page)
        p = [x["Prefix"] for x in page.get("CommonPrefixes", [])]
        assert len(c) + len(p) <= 7
        assert page["KeyCount"] == len(c) + len(p)
        contents += c
        prefixes += p
    assert contents == [n for n in expected if "/" not in n]
    assert prefixes == [f"d{d:02d}/" for d in range(20)]

    # A prefix and a delimiter.
    page = s3.list_objects_v2(Bucket=bucket, Prefix="d03/", Delimiter="/")
    assert keys_of(page) == [f"d03/file-{i:03d}" for i in range(90)]
    assert [x["Prefix"] for x in page["CommonPrefixes"]] == ["d03/sub/"]
    assert page["KeyCount"] == 91

    # Another delimiter: common prefixes end at its first occurrence after the prefix.
    page = s3.list_objects_v2(Bucket=bucket, Prefix="d1", Delimiter="-")
    assert keys_of(page) == []
    assert [x["Prefix"] for x in page["CommonPrefixes"]] == sorted(
        [f"d{d:02d}/file-" for d in range(10, 20)]
        + [f"d{d:02d}/sub/x-" for d in range(10, 20)]
    )

    # StartAfter.
    got = []
    for page in paginator.paginate(
        Bucket=bucket, StartAfter="d05/file-050", PaginationConfig={"PageSize": 300}
    ):
        got += keys_of(page)
    assert got == [n for n in expected if n > "d05/file-050"]

    # StartAfter with a prefix, a key that is not stored.
    page = s3.list_objects_v2(Bucket=bucket, Prefix="d19/", StartAfter="d19/file-0895")
    assert keys_of(page) == [
        n for n in expected if n.startswith("d19/") and n > "d19/file-0895"
    ]
    assert keys_of(page) == [f"d19/sub/x-{i}" for i in range(5)]

    # Nothing matches.
    page = s3.list_objects_v2(Bucket=bucket, Prefix="zzz")
    assert page["KeyCount"] == 0 and "Contents" not in page
    assert page["IsTruncated"] is False


def test_list_objects_v1_marker(cluster, bucket):
    s3 = cluster.client()
    names = [f"k{i:02d}" for i in range(30)] + [f"p/{i}" for i in range(5)]
    _put_all(s3, bucket, names)
    expected = sorted(names)

    # Pages of 10, each continuing after the last key of the one before.
    listed, marker = [], ""
    while True:
        page = s3.list_objects(Bucket=bucket, MaxKeys=10, Marker=marker)
        keys = keys_of(page)
        assert len(keys) <= 10
        listed += keys
        if not page["IsTruncated"]:
            break
        marker = page.get("NextMarker") or keys[-1]
    assert listed == expected

    # A marker that is not a stored key.
    page = s3.list_objects(Bucket=bucket, Marker="k15x")
    assert keys_of(page) == [n for n in expected if n > "k15x"]

    # With a delimiter, a truncated listing gives NextMarker.
    page = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=30)
    assert page["IsTruncated"] is True
    assert keys_of(page) == expected[:30]
    assert "NextMarker" in page
    rest = s3.list_objects(Bucket=bucket, Delimiter="/", Marker=page["NextMarker"])
    assert keys_of(rest) == []
    assert [x["Prefix"] for x in rest["CommonPrefixes"]] == ["p/"]
    assert rest["IsTruncated"] is False

    # The v1 paginator.
    got = []
    for page in s3.get_paginator("list_objects").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 4}
    ):
        got += keys_of(page)
    assert got == expected


# ---------------------------------------------------------------- presigned URLs


def test_presigned_urls(cluster, bucket, auth_failures):
    s3 = cluster.client()
    body = data_of(7, 300_000)
    s3.put_object(Bucket=bucket, Key="shared.bin", Body=body)

    for client in (s3, cluster.client(signature_version="s3v4")):
        url = client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "shared.bin"}, ExpiresIn=300
        )
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200
            assert r.read() == body

    v4 = cluster.client(signature_version="s3v4")
    url = v4.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "uploaded.bin"}, ExpiresIn=300
    )
    up = data_of(8, 5000)
    req = urllib.request.Request(url, data=up, method="PUT")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
    assert s3.get_object(Bucket=bucket, Key="uploaded.bin")["Body"].read() == up

    # A presigned URL of a key with the wrong secret is refused.
    wrong = cluster.client_for(
        cluster.keys["write"].id, "0" * 64, signature_version="s3v4"
    ).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "shared.bin"}, ExpiresIn=300
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(wrong, timeout=30)
    assert info.value.code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in info.value.read()


def test_presigned_url_expires(cluster, bucket, auth_failures):
    s3 = cluster.client(signature_version="s3v4")
    s3.put_object(Bucket=bucket, Key="soon-gone", Body=b"x" * 100)
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "soon-gone"}, ExpiresIn=1
    )
    time.sleep(2.5)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=30)
    assert info.value.code == 403
    body = info.value.read()
    assert b"<Code>AccessDenied</Code>" in body, body


# ---------------------------------------------------------------- authentication and errors


def test_wrong_secret_is_signature_does_not_match(cluster, bucket, auth_failures):
    good = cluster.client()
    good.put_object(Bucket=bucket, Key="k", Body=b"v")
    bad = cluster.client_for(cluster.keys["write"].id, "f" * 64)
    assert error_of(bad.get_object, Bucket=bucket, Key="k") == (
        "SignatureDoesNotMatch", 403)
    assert error_of(bad.put_object, Bucket=bucket, Key="k2", Body=b"v") == (
        "SignatureDoesNotMatch", 403)
    assert error_of(bad.list_buckets) == ("SignatureDoesNotMatch", 403)
    # Nothing was written.
    assert error_of(good.head_object, Bucket=bucket, Key="k2") == ("404", 404)


def test_unknown_access_key_is_invalid_access_key_id(cluster, bucket, auth_failures):
    bad = cluster.client_for("rbk-0000000000000000", "0" * 64)
    assert error_of(bad.get_object, Bucket=bucket, Key="k") == ("InvalidAccessKeyId", 403)
    assert error_of(bad.put_object, Bucket=bucket, Key="k", Body=b"v") == (
        "InvalidAccessKeyId", 403)
    assert error_of(bad.list_buckets) == ("InvalidAccessKeyId", 403)


def test_missing_bucket_and_key(cluster, bucket):
    s3 = cluster.client()
    missing = bucket + "-none"
    assert error_of(s3.get_object, Bucket=missing, Key="k") == ("NoSuchBucket", 404)
    assert error_of(s3.list_objects_v2, Bucket=missing) == ("NoSuchBucket", 404)
    assert error_of(s3.list_objects, Bucket=missing) == ("NoSuchBucket", 404)
    assert error_of(s3.head_bucket, Bucket=missing) == ("404", 404)
    assert error_of(s3.delete_bucket, Bucket=missing) == ("NoSuchBucket", 404)
    assert error_of(s3.put_object, Bucket=missing, Key="k", Body=b"v") == (
        "NoSuchBucket", 404)
    assert error_of(s3.create_multipart_upload, Bucket=missing, Key="k") == (
        "NoSuchBucket", 404)

    assert error_of(s3.get_object, Bucket=bucket, Key="nope") == ("NoSuchKey", 404)
    assert error_of(s3.head_object, Bucket=bucket, Key="nope") == ("404", 404)
    assert error_of(
        s3.copy_object, Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "nope"}
    ) == ("NoSuchKey", 404)
    assert error_of(
        s3.upload_part, Bucket=bucket, Key="k", UploadId="no-such-upload", PartNumber=1,
        Body=b"x",
    ) == ("NoSuchUpload", 404)


def test_read_only_key(cluster, bucket):
    cluster.client().put_object(Bucket=bucket, Key="readable", Body=b"for readers")
    ro = cluster.client("read")
    assert ro.get_object(Bucket=bucket, Key="readable")["Body"].read() == b"for readers"
    assert "readable" in keys_of(ro.list_objects_v2(Bucket=bucket))
    assert error_of(ro.put_object, Bucket=bucket, Key="new", Body=b"v") == (
        "AccessDenied", 403)
    assert error_of(ro.delete_object, Bucket=bucket, Key="readable") == (
        "AccessDenied", 403)
    assert error_of(ro.create_multipart_upload, Bucket=bucket, Key="new") == (
        "AccessDenied", 403)
    assert error_of(ro.create_bucket, Bucket=bucket + "-ro") == ("AccessDenied", 403)
    assert keys_of(cluster.client().list_objects_v2(Bucket=bucket)) == ["readable"]


def test_namespace_limited_key(cluster, bucket):
    lim = cluster.client("limited")
    lim.create_bucket(Bucket="limited")
    lim.put_object(Bucket="limited", Key="mine", Body=b"ok")
    assert lim.get_object(Bucket="limited", Key="mine")["Body"].read() == b"ok"

    cluster.client().put_object(Bucket=bucket, Key="theirs", Body=b"secret")
    assert error_of(lim.put_object, Bucket=bucket, Key="x", Body=b"v") == (
        "AccessDenied", 403)
    assert error_of(lim.get_object, Bucket=bucket, Key="theirs") == ("AccessDenied", 403)
    assert error_of(lim.list_objects_v2, Bucket=bucket) == ("AccessDenied", 403)
    assert error_of(lim.delete_object, Bucket=bucket, Key="theirs") == (
        "AccessDenied", 403)

    names = [b["Name"] for b in lim.list_buckets()["Buckets"]]
    assert "limited" in names
    assert bucket not in names


# ---------------------------------------------------------------- copy and bulk delete


def test_copy_object(cluster, bucket):
    s3 = cluster.client()
    body = data_of(9, 200_000)
    s3.put_object(
        Bucket=bucket, Key="src", Body=body, ContentType="image/png",
        Metadata={"origin": "camera"},
    )

    r = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "src"})
    assert r["CopyObjectResult"]["ETag"]
    got = s3.get_object(Bucket=bucket, Key="copy")
    assert got["Body"].read() == body
    assert got["ContentType"] == "image/png"
    assert got["Metadata"] == {"origin": "camera"}
    assert got["ETag"] == r["CopyObjectResult"]["ETag"]

    s3.copy_object(
        Bucket=bucket, Key="replaced", CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="REPLACE", ContentType="text/x-new", Metadata={"fresh": "yes"},
    )
    head = s3.head_object(Bucket=bucket, Key="replaced")
    assert head["ContentType"] == "text/x-new"
    assert head["Metadata"] == {"fresh": "yes"}
    assert s3.get_object(Bucket=bucket, Key="replaced")["Body"].read() == body

    # To another bucket, and a key with characters that need escaping.
    other = bucket + "-dst"
    s3.create_bucket(Bucket=other)
    s3.put_object(Bucket=bucket, Key="a dir/n\u00e4me+1", Body=b"escaped")
    s3.copy_object(
        Bucket=other, Key="x", CopySource={"Bucket": bucket, "Key": "a dir/n\u00e4me+1"}
    )
    assert s3.get_object(Bucket=other, Key="x")["Body"].read() == b"escaped"

    # The source is untouched.
    head = s3.head_object(Bucket=bucket, Key="src")
    assert head["ContentType"] == "image/png" and head["Metadata"] == {"origin": "camera"}


def test_upload_part_copy(cluster, bucket):
    """Parts copied from other objects, whole or a byte range of them (UploadPartCopy)."""
    s3 = cluster.client()
    big = data_of(31, 11 * MiB)
    small = data_of(32, 300_000)
    s3.put_object(Bucket=bucket, Key="pc/big", Body=big)
    s3.put_object(Bucket=bucket, Key="pc/small", Body=small)
    key = "pc/joined"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="x/joined")
    uid = upload["UploadId"]
    src = {"Bucket": bucket, "Key": "pc/big"}
    parts = []
    for number, (first, last) in enumerate([(0, 5 * MiB - 1), (5 * MiB, 11 * MiB - 1)], 1):
        r = s3.upload_part_copy(
            Bucket=bucket, Key=key, UploadId=uid, PartNumber=number, CopySource=src,
            CopySourceRange=f"bytes={first}-{last}",
        )
        assert r["CopyPartResult"]["ETag"]
        parts.append({"PartNumber": number, "ETag": r["CopyPartResult"]["ETag"]})
    # The last part: another object, whole.
    r = s3.upload_part_copy(
        Bucket=bucket, Key=key, UploadId=uid, PartNumber=3,
        CopySource={"Bucket": bucket, "Key": "pc/small"},
    )
    parts.append({"PartNumber": 3, "ETag": r["CopyPartResult"]["ETag"]})
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)["Parts"]
    assert [p["Size"] for p in listed] == [5 * MiB, 6 * MiB, len(small)]
    assert [p["ETag"] for p in listed] == [p["ETag"] for p in parts]

    # Refused: a range past the source, a malformed one, a missing source, a condition.
    bad = dict(Bucket=bucket, Key=key, UploadId=uid, PartNumber=4, CopySource=src)
    assert error_of(
        s3.upload_part_copy, **bad, CopySourceRange=f"bytes=0-{11 * MiB}"
    ) == ("InvalidArgument", 400)
    assert error_of(s3.upload_part_copy, **bad, CopySourceRange="bytes=5-") == (
        "InvalidArgument", 400)
    assert error_of(
        s3.upload_part_copy, **{**bad, "CopySource": {"Bucket": bucket, "Key": "pc/none"}}
    ) == ("NoSuchKey", 404)
    assert error_of(s3.upload_part_copy, **bad, CopySourceIfMatch='"nope"') == (
        "PreconditionFailed", 412)
    assert error_of(
        s3.upload_part_copy, **{**bad, "UploadId": "00" * 16}
    ) == ("NoSuchUpload", 404)
    assert len(s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)["Parts"]) == 3

    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": parts}
    )
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == big + small
    assert got["ContentType"] == "x/joined"
    # The sources are untouched.
    assert s3.get_object(Bucket=bucket, Key="pc/big")["Body"].read() == big


def test_managed_copy_of_a_large_object(cluster, bucket):
    """boto3's managed copy past its multipart threshold: CreateMultipartUpload,
    UploadPartCopy per range, CompleteMultipartUpload — to another bucket."""
    from boto3.s3.transfer import TransferConfig

    s3 = cluster.client()
    data = data_of(33, 17 * MiB + 12345)
    s3.put_object(
        Bucket=bucket, Key="mc/src", Body=data, ContentType="video/x-test",
        Metadata={"take": "2"},
    )
    other = bucket + "-mc"
    s3.create_bucket(Bucket=other)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    s3.copy({"Bucket": bucket, "Key": "mc/src"}, other, "mc/dst", Config=config)
    got = s3.get_object(Bucket=other, Key="mc/dst")
    assert got["Body"].read() == data
    assert got["ETag"].endswith('-4"'), got["ETag"]
    assert got["ContentType"] == "video/x-test"
    assert got["Metadata"] == {"take": "2"}
    assert s3.list_multipart_uploads(Bucket=other).get("Uploads", []) == []


def test_delete_objects(cluster, bucket):
    s3 = cluster.client()
    present = [f"del/{i}" for i in range(5)]
    for k in present:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    s3.put_object(Bucket=bucket, Key="keep", Body=b"keep")
    missing = ["del/missing-1", "del/missing-2", "nothing-here"]
    r = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in present + missing]}
    )
    assert r.get("Errors", []) == []
    assert sorted(d["Key"] for d in r["Deleted"]) == sorted(present + missing)
    assert keys_of(s3.list_objects_v2(Bucket=bucket)) == ["keep"]

    # Quiet: only errors are reported.
    s3.put_object(Bucket=bucket, Key="q1", Body=b"1")
    r = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "q1"}, {"Key": "q2"}], "Quiet": True}
    )
    assert r.get("Deleted", []) == [] and r.get("Errors", []) == []
    assert keys_of(s3.list_objects_v2(Bucket=bucket)) == ["keep"]

    # A read-only key gets per-key AccessDenied errors (or the whole request denied).
    ro = cluster.client("read")
    try:
        r = ro.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "keep"}]})
        assert [e["Code"] for e in r.get("Errors", [])] == ["AccessDenied"]
        assert r.get("Deleted", []) == []
    except ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDenied"
    assert keys_of(s3.list_objects_v2(Bucket=bucket)) == ["keep"]


# ---------------------------------------------------------------- buckets


def test_bucket_lifecycle(cluster, bucket_name):
    s3 = cluster.client()
    r = s3.create_bucket(Bucket=bucket_name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.head_bucket(Bucket=bucket_name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert bucket_name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    # The read key sees it too.
    assert bucket_name in [b["Name"] for b in cluster.client("read").list_buckets()["Buckets"]]
    # Creating it again succeeds (us-east-1 behaviour for the owner).
    s3.create_bucket(Bucket=bucket_name)

    s3.put_object(Bucket=bucket_name, Key="x", Body=b"x")
    assert error_of(s3.delete_bucket, Bucket=bucket_name) == ("BucketNotEmpty", 409)
    assert s3.head_bucket(Bucket=bucket_name)["ResponseMetadata"]["HTTPStatusCode"] == 200

    s3.delete_object(Bucket=bucket_name, Key="x")
    r = s3.delete_bucket(Bucket=bucket_name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(s3.head_bucket, Bucket=bucket_name) == ("404", 404)
    assert bucket_name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert error_of(s3.delete_bucket, Bucket=bucket_name) == ("NoSuchBucket", 404)
    assert error_of(s3.list_objects_v2, Bucket=bucket_name) == ("NoSuchBucket", 404)

    # Names S3 refuses.
    for bad in ("Upper-Case", "under_score", "ab", "a" * 64, "-dash-first"):
        assert error_of(s3.create_bucket, Bucket=bad) == ("InvalidBucketName", 400), bad


def test_bucket_location_and_versioning(cluster, bucket):
    s3 = cluster.client()
    loc = s3.get_bucket_location(Bucket=bucket)
    assert loc.get("LocationConstraint") in (None, "")
    ver = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in ver


# ---------------------------------------------------------------- the cluster and the CLI


def test_read_through_another_node_of_the_same_group(cluster, bucket):
    """Node 1 and node 2 are both group 1: the second gateway must route to the owner."""
    body = data_of(11, 3 * MiB + 17)
    names = [f"routed-{i}" for i in range(16)]  # spread over both nodes' ranges
    for n in names:
        cluster.client(endpoint=0).put_object(Bucket=bucket, Key=n, Body=body + n.encode())
    other = cluster.client(endpoint=1)
    etags = {}
    for n in names:
        etags[n] = cluster.client(endpoint=0).head_object(Bucket=bucket, Key=n)["ETag"]
    for n in names:
        got = other.get_object(Bucket=bucket, Key=n)
        assert got["Body"].read() == body + n.encode(), n
        assert got["ETag"] == etags[n], n
    assert keys_of(other.list_objects_v2(Bucket=bucket)) == sorted(names)
    # And the reverse direction.
    other.put_object(Bucket=bucket, Key="from-node2", Body=b"two")
    got = cluster.client(endpoint=0).get_object(Bucket=bucket, Key="from-node2")
    assert got["Body"].read() == b"two"


def test_read_through_a_node_of_the_other_group(cluster, bucket):
    """Node 1 is group 1, nodes 3 and 4 group 2. S3 promises read-after-write from any
    endpoint: a value written through node 1's gateway must be readable through theirs."""
    body = data_of(12, 256 * 1024)
    s3 = cluster.client(endpoint=0)
    put = s3.put_object(Bucket=bucket, Key="replicated", Body=body, ContentType="text/x-r",
                        Metadata={"m": "1"})
    for endpoint in (2, 3):
        c = cluster.client(endpoint=endpoint)
        got = c.get_object(Bucket=bucket, Key="replicated")
        assert got["Body"].read() == body, cluster.endpoints[endpoint]
        assert got["ContentType"] == "text/x-r"
        assert got["Metadata"] == {"m": "1"}
        assert "replicated" in keys_of(c.list_objects_v2(Bucket=bucket))
        # One object, one entity tag, whichever endpoint is asked (and so conditions
        # made with it hold everywhere).
        assert got["ETag"] == put["ETag"], cluster.endpoints[endpoint]
        assert c.head_object(Bucket=bucket, Key="replicated")["ETag"] == put["ETag"]
        r = c.get_object(Bucket=bucket, Key="replicated", IfMatch=put["ETag"])
        assert r["Body"].read() == body
    # A bucket made through one group is seen through the other.
    assert cluster.client(endpoint=3).head_bucket(Bucket=bucket)


def test_ringblob_cli_interop(cluster, bucket, tmp_path):
    s3 = cluster.client()
    body = data_of(13, 1 * MiB + 3)
    s3.put_object(Bucket=bucket, Key="from/boto3.bin", Body=body)
    out = tmp_path / "got.bin"
    cluster.cli("--namespace", bucket, "get", "from/boto3.bin", "-o", out)
    assert out.read_bytes() == body
    # To stdout too.
    assert cluster.cli("--namespace", bucket, "get", "from/boto3.bin").stdout == body

    body2 = data_of(14, 700_001)
    src = tmp_path / "cli.bin"
    src.write_bytes(body2)
    cluster.cli("--namespace", bucket, "put", "from/cli.bin", src)
    assert s3.get_object(Bucket=bucket, Key="from/cli.bin")["Body"].read() == body2
    assert s3.head_object(Bucket=bucket, Key="from/cli.bin")["ContentLength"] == len(body2)
    assert keys_of(s3.list_objects_v2(Bucket=bucket)) == ["from/boto3.bin", "from/cli.bin"]

    listed = cluster.cli("ls", bucket).stdout.decode().split()
    assert listed == ["from/boto3.bin", "from/cli.bin"]

    # A multipart object is an ordinary name to the CLI.
    part = data_of(15, 5 * MiB)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=part)
    e2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=2, Body=b"tail")
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1["ETag"]},
                                   {"PartNumber": 2, "ETag": e2["ETag"]}]},
    )
    assert cluster.cli("--namespace", bucket, "get", "mp").stdout == part + b"tail"
