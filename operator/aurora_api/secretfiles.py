"""Secret values handed to a process as files, not as environment variables.

Why: a pod's environment is visible wherever the process's environment is (``/proc/<pid>/environ`` to the
same user, crash reports, debugging dumps, every child process); a mounted Secret file is read only where it
is needed, and Kubernetes updates it when the Secret changes. The operator sets ``<NAME>_FILE`` to the path
of the mounted key (the convention of many server images); a local process (tests, a developer's shell) may
still set ``<NAME>`` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

FILE_SUFFIX: Final = "_FILE"


def read(env: Mapping[str, str], name: str) -> str:
    """``env[name]`` if set, else the content of the file ``env[name + "_FILE"]`` names (surrounding
    whitespace removed); "" when neither is there or the file is missing (an optional Secret that does not
    exist: the caller's use of the empty value fails and is reported, as with an unset variable)."""
    value = env.get(name, "")
    if value:
        return value
    path = env.get(name + FILE_SUFFIX, "")
    if not path:
        return ""
    try:
        return Path(path).read_text().strip()
    except FileNotFoundError:
        return ""
