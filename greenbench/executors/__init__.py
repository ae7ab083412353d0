"""Executors: where cells run. `local` runs each in a child process on this machine."""
