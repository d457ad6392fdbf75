"""Sources and outputs in object storage (``s3://``, ``gs://``, any fsspec URL); docs/object-storage.md.

Each scan is staged: its source object is downloaded to a local cache, the scan is processed there by
the same code as a local run (so resume, fingerprints and checksums are the local ones), and the
finished scan folder is uploaded with a manifest of every object's size and sha256 written last.
Local disk is needed only for the scans in flight, never for the whole batch.
"""
