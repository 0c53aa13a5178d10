"""Training thread -> byte budget: the frames' shared memory, each clip's life, one queue with
one lock. No I/O, no PyAV. Imports _base only."""
