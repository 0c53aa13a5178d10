"""The words every room shares: result types, frames, codecs and the encoder interface,
argument checks, per-frame info, frame_stride, JSON-ready metadata, file modes, gymnasium's
schedule. Imports no other room."""
