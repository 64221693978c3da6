"""Alignment-tuning tasks (LC-Rec's SEQ, MUT, ASY, ITE, PER, plus NEG): template pools, one builder per family,
teachers for intentions and preferences, and the ``tasks`` step (:func:`lcrec.tasks.tasks.build_tasks`)."""
