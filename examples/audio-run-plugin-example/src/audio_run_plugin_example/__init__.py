"""A template third-party plugin for ``audio-run``: one backbone and one dataset."""
