"""Frames -> bytes in files: PyAV encoders, encoder processes, fragmented mp4, overlays, health,
sidecars, timelines and the manifest. Imports _base and _queue (the arena encoder processes
map)."""
