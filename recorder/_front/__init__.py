"""Ways in: the public Recorder, Episode, the async facade, save_video, SIGTERM. They reach the
core through the ClipService port only. Imports _base and _service."""
