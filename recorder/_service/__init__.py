"""Threads, outcomes, policies: the ClipService port (lifecycle, workers, flush/close, stats),
each clip's file, keep, the sink's producer side. Imports _base, _queue, _encode."""
