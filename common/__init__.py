"""The foundation every layer may import: errors, settings, secret masking and encryption,
process identity and the clock. Nothing here imports another package of the project."""
