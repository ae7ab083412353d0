"""The exit codes of the `greenbench` command, shared by every command module."""

EXIT_OK = 0
EXIT_FAILED_CELLS = 1  # the run finished, but some cells failed: `run --resume` reruns them
EXIT_REGRESSION = 1  # history --fail-on-regression: the newest run of a cell regressed
EXIT_USAGE = 2  # a fixable problem with the input (argparse uses 2 as well)
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
