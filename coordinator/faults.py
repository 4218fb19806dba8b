"""Fault injection for tests: kill the coordinator at a named phase of a round.

With ``GREENFED_FAULT=POINT`` (any round) or ``GREENFED_FAULT=POINT@ROUND`` in the environment,
the process calls ``os._exit(FAULT_EXIT)`` when the engine reaches that point, as a SIGKILL or
a power cut would stop it (no cleanup, no graceful shutdown). Points, in a round's order:

``crash-after-open``
    the round and its assignments are stored, no update has arrived yet
``crash-after-upload``
    the first update of the round was accepted and recorded
``crash-after-aggregate``
    updates aggregated, model evaluated, checkpoint written; completion not yet recorded

A restarted coordinator must lose no completed round (tests/trust/test_faults.py). Never set
this variable in production.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

FAULT_ENV = "GREENFED_FAULT"
FAULT_EXIT = 99
POINTS = ("crash-after-open", "crash-after-upload", "crash-after-aggregate")


def fault_point(point: str, round_no: int) -> None:
    """Exit at once when ``GREENFED_FAULT`` names this point (and round, if given)."""
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return
    name, _, at = spec.partition("@")
    if name == point and (not at or int(at) == round_no):
        log.error("fault injection: %s in round %d: exiting now", point, round_no)
        logging.shutdown()
        os._exit(FAULT_EXIT)
