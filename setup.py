# Metadata lives in setup.cfg; this shim keeps `pip install -e .` working with setuptools<70.
from setuptools import setup

setup()
