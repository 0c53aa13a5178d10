"""Threads, outcomes, policies: the ClipService port (lifecycle, workers, flush/close, stats),
each clip's file, adaptive presets, keep and its byte quota, the sink's producer side. Imports
_base, _queue, _encode."""
