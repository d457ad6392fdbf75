"""`python -m orpam_pipeline.cli` runs the command line."""

from orpam_pipeline.cli.main import app

if __name__ == "__main__":
    app()
