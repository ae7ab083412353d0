"""The download command of the installed huggingface-hub, for the hints of the weights errors.

huggingface-hub 0.34 added the `hf` command; earlier releases ship `huggingface-cli` only, so
the hint names whichever the installed one has and never a command that is not there.
"""

from __future__ import annotations

import shlex
from importlib.metadata import PackageNotFoundError, distribution

HUB_DISTRIBUTION = "huggingface-hub"


def hub_commands() -> set[str]:
    """The console scripts the installed huggingface-hub ships (none when it is missing)."""
    try:
        scripts = distribution(HUB_DISTRIBUTION).entry_points
    except PackageNotFoundError:
        return set()
    return {script.name for script in scripts if script.group == "console_scripts"}


def download_hint(repo_id: str) -> str:
    """`hf download ID` (or `huggingface-cli download ID` with an older huggingface-hub)."""
    commands = hub_commands()
    command = "hf" if "hf" in commands or "huggingface-cli" not in commands else "huggingface-cli"
    return f"{command} download {shlex.quote(repo_id)}"
