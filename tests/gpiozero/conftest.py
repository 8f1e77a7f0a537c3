"""The gpiozero tests' fixtures; they live in zerostack.py beside the helpers the tests import."""

from zerostack import factory, observe, python, run_script, site_dir  # noqa: F401
