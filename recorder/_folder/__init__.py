"""Tools on a folder of videos: the static and live gallery, serving it, crash recovery.
Imports _base and _encode (sidecars, mp4, remux); never imported by the core."""
