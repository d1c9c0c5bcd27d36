"""Sub-commands of `python -m fer_core`, one module each."""
