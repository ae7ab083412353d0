"""Where a cell runs: device names, availability checks and synchronisation."""
