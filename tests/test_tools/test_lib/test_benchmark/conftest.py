"""Fixtures of the ``tools.lib.benchmark`` tests."""
import pytest

from mmifr.ops.solvers import SOLVERS


@pytest.fixture
def no_leaked_v0_solver():
    """Unregister ``broyden_v0`` after the test if it registered it.

    Other tests list the registered solvers (and error messages do): the
    benchmark's reference solver must not outlive the test that needs it.
    """
    had = 'broyden_v0' in SOLVERS
    yield
    if not had:
        SOLVERS.pop('broyden_v0', None)
