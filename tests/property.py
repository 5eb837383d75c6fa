"""How many examples the larger property tests run: imports nothing, so that the core's tests run alone."""

#: The fast set (`pytest -m "not slow"`, `make test-fast`) runs the larger property tests on a fifth of their
#: examples, for the edit-run loop; every other run, `make test` among them, on all (tests/conftest.py sets it).
EXAMPLES_SHARE = 1.0


def examples(count: int) -> int:
    """A property test's max_examples, of which the fast set runs its share."""
    return max(50, round(count * EXAMPLES_SHARE))
