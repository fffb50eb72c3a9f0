"""Progress messages of the tools.

They go to stderr: stdout carries only the tables and results a tool prints,
so that it can be piped or redirected on its own.
"""
import sys

from mmengine.logging import MMLogger


def log(msg: str) -> None:
    """Print ``msg`` to stderr, flushed (a benchmark runs for minutes)."""
    print(msg, file=sys.stderr, flush=True)


def quiet_mmengine() -> None:
    """Keep mmengine's INFO lines (weight init reports, ...) off the output.

    Every mmengine component that logs asks for the current ``MMLogger``
    instance; creating one at ``WARNING`` level first makes that the one
    they find.
    """
    MMLogger.get_instance('mmifr_tools', log_level='WARNING')
