"""URLs versus paths, ``--storage-option`` parsing and redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.remote.urls import as_location, is_url, parse_storage_options, redact


def test_urls_and_paths_are_told_apart():
    assert is_url("s3://bucket/x") and is_url("gs://b") and is_url("memory://a")
    assert not is_url("file:///tmp/x") and not is_url("/tmp/x") and not is_url(Path("s3:/b"))
    assert as_location("s3://bucket/out/") == "s3://bucket/out"
    assert as_location("file:///tmp/out") == Path("/tmp/out")
    assert as_location("relative/dir") == Path("relative/dir")


def test_storage_options_parse_json_values_and_nested_keys():
    parsed = parse_storage_options(["anon=true", "client_kwargs.endpoint_url=http://h:9000", "default_block_size=5",
                                    "profile=lab"])  # fmt: skip
    assert parsed == {"anon": True, "client_kwargs": {"endpoint_url": "http://h:9000"}, "default_block_size": 5,
                      "profile": "lab"}  # fmt: skip
    with pytest.raises(OrpamError, match="KEY=VALUE"):
        parse_storage_options(["novalue"])


def test_credentials_in_a_url_are_never_shown():
    assert redact("s3://AKIA:secret@bucket/x") == "s3://bucket/x"
    assert redact("s3://bucket/x") == "s3://bucket/x"
