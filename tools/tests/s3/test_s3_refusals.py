"""What the S3 API refuses or checks: operations it does not implement are refused with
`NotImplemented` and change nothing (never taken for the object or bucket operation they
look like), a namespace-limited key learns nothing of another bucket, and the preconditions
and response overrides S3 clients send are honoured."""

import datetime

import pytest
from botocore.exceptions import ClientError

from test_s3 import data_of, error_of


def _intact(s3, bucket, key, body, content_type):
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == body
    assert got["ContentType"] == content_type
    assert got["Metadata"] == {"k": "v"}


def test_unsupported_object_operations_change_nothing(cluster, bucket):
    s3 = cluster.client()
    body = b"precious"
    s3.put_object(Bucket=bucket, Key="v", Body=body, ContentType="text/x", Metadata={"k": "v"})
    tags = {"TagSet": [{"Key": "a", "Value": "b"}]}
    calls = [
        (s3.put_object_acl, {"ACL": "private"}),
        (s3.get_object_acl, {}),
        (s3.put_object_tagging, {"Tagging": tags}),
        (s3.get_object_tagging, {}),
        (s3.delete_object_tagging, {}),
        (s3.get_object, {"VersionId": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"}),
        (s3.get_object, {"PartNumber": 1}),
    ]
    for call, extra in calls:
        assert error_of(call, Bucket=bucket, Key="v", **extra) == ("NotImplemented", 501), call
        _intact(s3, bucket, "v", body, "text/x")


def test_unsupported_bucket_operations_change_nothing(cluster, bucket):
    s3 = cluster.client()
    calls = [
        s3.delete_bucket_policy,
        s3.delete_bucket_cors,
        s3.delete_bucket_lifecycle,
        s3.delete_bucket_tagging,
        s3.delete_bucket_website,
        s3.delete_bucket_encryption,
        s3.get_bucket_policy,
        s3.list_object_versions,
    ]
    for call in calls:
        assert error_of(call, Bucket=bucket) == ("NotImplemented", 501), call
        s3.head_bucket(Bucket=bucket)
    assert error_of(
        s3.put_bucket_versioning, Bucket=bucket,
        VersioningConfiguration={"Status": "Enabled"},
    ) == ("NotImplemented", 501)
    assert error_of(
        s3.put_bucket_tagging, Bucket=bucket, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]},
    ) == ("NotImplemented", 501)
    s3.head_bucket(Bucket=bucket)


def test_a_limited_key_learns_nothing_of_another_bucket(cluster, bucket):
    s3 = cluster.client()
    lim = cluster.client("limited")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="secret/upload-name")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="secret/upload-name", UploadId=upload, PartNumber=1,
                   Body=b"part")
    assert error_of(lim.list_multipart_uploads, Bucket=bucket) == ("AccessDenied", 403)
    assert error_of(
        lim.list_parts, Bucket=bucket, Key="secret/upload-name", UploadId=upload
    ) == ("AccessDenied", 403)
    assert error_of(lim.head_bucket, Bucket=bucket) == ("403", 403)
    assert error_of(lim.get_bucket_location, Bucket=bucket) == ("AccessDenied", 403)
    assert error_of(
        lim.abort_multipart_upload, Bucket=bucket, Key="secret/upload-name", UploadId=upload
    ) == ("AccessDenied", 403)
    # The owner still sees and finishes its upload.
    listed = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [u["UploadId"] for u in listed] == [upload]
    s3.abort_multipart_upload(Bucket=bucket, Key="secret/upload-name", UploadId=upload)


def test_delete_honours_if_match(cluster, bucket):
    s3 = cluster.client()
    put = s3.put_object(Bucket=bucket, Key="dim", Body=b"keep me")
    assert error_of(s3.delete_object, Bucket=bucket, Key="dim", IfMatch='"nomatch"') == (
        "PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="dim")["Body"].read() == b"keep me"
    s3.delete_object(Bucket=bucket, Key="dim", IfMatch=put["ETag"])
    assert error_of(s3.get_object, Bucket=bucket, Key="dim") == ("NoSuchKey", 404)


def test_copy_preconditions(cluster, bucket):
    s3 = cluster.client()
    put = s3.put_object(Bucket=bucket, Key="src", Body=b"source")
    src = {"Bucket": bucket, "Key": "src"}
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    failing = [
        {"CopySourceIfMatch": '"zzz"'},
        {"CopySourceIfNoneMatch": put["ETag"]},
        {"CopySourceIfUnmodifiedSince": past},
        {"CopySourceIfModifiedSince": future},
    ]
    for extra in failing:
        assert error_of(s3.copy_object, Bucket=bucket, Key="dst", CopySource=src, **extra) == (
            "PreconditionFailed", 412), extra
        assert error_of(s3.head_object, Bucket=bucket, Key="dst") == ("404", 404)
    s3.copy_object(Bucket=bucket, Key="dst", CopySource=src, CopySourceIfMatch=put["ETag"],
                   CopySourceIfModifiedSince=past)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"source"
    # Onto itself without new metadata: refused as S3 does.
    assert error_of(s3.copy_object, Bucket=bucket, Key="src", CopySource=src) == (
        "InvalidRequest", 400)
    # From a bucket that does not exist.
    assert error_of(
        s3.copy_object, Bucket=bucket, Key="x", CopySource={"Bucket": "no-such-bkt", "Key": "a"}
    ) == ("NoSuchBucket", 404)


def test_list_objects_v1_pages_with_a_delimiter_repeat_nothing(cluster, bucket):
    s3 = cluster.client()
    for key in ["a", "b/1", "b/2", "c/1", "d"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    keys, prefixes, marker = [], [], ""
    while True:
        page = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=2, Marker=marker)
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            break
        marker = page["NextMarker"]
    assert keys == ["a", "d"]
    assert prefixes == ["b/", "c/"]


def test_response_header_overrides(cluster, bucket):
    s3 = cluster.client()
    s3.put_object(Bucket=bucket, Key="o", Body=b"data", ContentType="text/plain")
    got = s3.get_object(
        Bucket=bucket, Key="o", ResponseContentType="application/x-o",
        ResponseCacheControl="no-cache", ResponseContentDisposition="attachment; filename=o",
    )
    assert got["ContentType"] == "application/x-o"
    assert got["CacheControl"] == "no-cache"
    assert got["ContentDisposition"] == "attachment; filename=o"
    assert got["Body"].read() == b"data"
    # A V2 presigned URL signs the overrides too.
    v2 = cluster.client(signature_version="s3")
    url = v2.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "o", "ResponseContentType": "a/b"},
        ExpiresIn=60,
    )
    import urllib.request

    with urllib.request.urlopen(url) as r:
        assert r.headers["Content-Type"] == "a/b"
        assert r.read() == b"data"


def test_a_key_over_the_name_limit_is_refused(cluster, bucket):
    s3 = cluster.client()
    long_key = "n" * 8000
    for call in (s3.get_object, s3.head_object, s3.delete_object):
        with pytest.raises(ClientError) as info:
            call(Bucket=bucket, Key=long_key)
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_request_validation(cluster, bucket):
    s3 = cluster.client()
    assert error_of(s3.create_bucket, Bucket="192.168.1.1") == ("InvalidBucketName", 400)
    with pytest.raises(ClientError) as info:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": []})
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_digests_sent_with_a_body_are_checked(cluster, bucket):
    import base64
    import hashlib
    import zlib

    s3 = cluster.client()
    data = data_of(11, 300_000)
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    sha1 = base64.b64encode(hashlib.sha1(data).digest()).decode()
    s3.put_object(Bucket=bucket, Key="ok", Body=data, ContentMD5=md5)
    s3.put_object(Bucket=bucket, Key="ok2", Body=data, ChecksumCRC32=crc)
    s3.put_object(Bucket=bucket, Key="ok3", Body=data, ChecksumSHA1=sha1)
    assert s3.get_object(Bucket=bucket, Key="ok")["Body"].read() == data

    wrong_md5 = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    wrong_crc = base64.b64encode(zlib.crc32(b"x").to_bytes(4, "big")).decode()
    for extra in ({"ContentMD5": wrong_md5}, {"ChecksumCRC32": wrong_crc}):
        assert error_of(s3.put_object, Bucket=bucket, Key="bad", Body=data, **extra) == (
            "BadDigest", 400), extra
        assert error_of(s3.head_object, Bucket=bucket, Key="bad") == ("404", 404)
    # Replacing an object with a body that fails its digest keeps the old one.
    assert error_of(s3.put_object, Bucket=bucket, Key="ok", Body=b"new", ContentMD5=wrong_md5) == (
        "BadDigest", 400)
    assert s3.get_object(Bucket=bucket, Key="ok")["Body"].read() == data
    # A part with a wrong digest is refused and not listed.
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    assert error_of(
        s3.upload_part, Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1,
        Body=b"part", ContentMD5=wrong_md5,
    ) == ("BadDigest", 400)
    assert s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload).get("Parts", []) == []
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload)
    # A malformed value.
    assert error_of(s3.put_object, Bucket=bucket, Key="bad", Body=b"v", ContentMD5="nope") == (
        "InvalidDigest", 400)
