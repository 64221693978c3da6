"""gc.freeze around a loaded predictor: frozen objects leave the collector's scans, a frozen cycle survives
collections until refreeze, and the predictor freezes after load and refreezes after an index swap."""

import gc
import weakref

from lcrec.serve import heap


class Node:
    pass


def test_frozen_objects_leave_the_scans_and_refreeze_collects_old_cycles():
    heap.unfreeze()
    a = Node()
    a.me = a  # a reference cycle: only the cyclic collector can free it
    ref = weakref.ref(a)
    try:
        info = heap.freeze_loaded()
        assert info["frozen"] == gc.get_freeze_count() > 0
        assert not any(o is a for o in gc.get_objects())  # not in any generation a collection walks
        del a
        gc.collect()
        assert ref() is not None  # frozen: a full collection no longer looks at it
        heap.refreeze()
        assert ref() is None  # the one collection of refreeze frees the old version's cycles
    finally:
        heap.unfreeze()
    assert gc.get_freeze_count() == 0


def test_acyclic_frozen_objects_are_still_freed_by_reference_counting():
    heap.unfreeze()
    a = Node()
    ref = weakref.ref(a)
    try:
        heap.freeze_loaded()
        del a
        assert ref() is None
    finally:
        heap.unfreeze()
