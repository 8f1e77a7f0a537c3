"""The gpiozero tests' fixtures; they live in zerostack.py beside the helpers the tests import."""

from zerostack import observe, python, run_script, site_dir  # noqa: F401
