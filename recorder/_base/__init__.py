"""The words every room shares: result types, frames, codecs and the encoder interface,
argument checks, JSON-ready metadata, file modes, gymnasium's schedule. Imports no other room."""
