"""The records: one module per family (the stem of its reference and strategy
modules), each a ``RECORDS`` list of :class:`~conformance.checks.FunctionSpec`,
one per documented name of the family. :mod:`conformance.registry` gathers them."""
