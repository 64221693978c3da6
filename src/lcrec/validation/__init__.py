"""Data validation: Great Expectations suites over the ingested tables (``lcrec validate``)."""
