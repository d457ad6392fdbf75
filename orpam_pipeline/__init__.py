"""orpam_pipeline: registration and temporal-stability reports for bidirectional OR-PAM scans."""

__version__ = "0.1.0"
