"""How the tests that drive a whole job (the cluster and Slurm tests) fail.

A failed expectation raises Failure with a message that says what was
expected and what was found; the test's main catches it, prints it with the
files it keeps, and exits 1, after the context managers have stopped what
the test started (namespaces, daemons).
"""


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)
