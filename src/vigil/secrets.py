"""Reading secrets: from the environment or a private file, never from the spec.

One reader for every secret vigil uses (API tokens, webhook signing secrets, API keys). A secret file
must be private: a file that its group or others can read or write is refused, as ssh refuses a
private key with loose permissions.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vigil.errors import UsageError


def check_private(path: Path, what: str) -> None:
    """Refuse a file whose group or others have any permission on it (mode & 0o077)."""
    try:
        st = path.stat()
    except OSError as e:
        raise UsageError(f"cannot read the {what} {path}: {e.strerror or e}") from None
    if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
        raise UsageError(
            f"the {what} {path} is readable or writable by others (mode {stat.S_IMODE(st.st_mode):04o})",
            hint=f"make it private: chmod 600 {path}",
        )


def read_secret_file(path: str | Path, what: str, *, private: bool = True) -> str:
    """The stripped text of the file holding the secret ``what`` (e.g. "API token"); a clear error
    when it is missing, empty or not private."""
    p = Path(path)
    if private:
        check_private(p, f"{what} file")
    try:
        v = p.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise UsageError(f"cannot read the {what} file {p}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise UsageError(f"the {what} file {p} is not UTF-8 text") from None
    if not v:
        raise UsageError(f"the {what} file {p} is empty")
    return v


def read_secret(
    *, env: str | None = None, file: str | Path | None = None, what: str, environ: dict | None = None, private: bool = True
) -> str:
    """A secret from ``file`` (it wins when both are given: it was named explicitly) or from the
    environment variable ``env``."""
    if file is not None:
        return read_secret_file(file, what, private=private)
    if env is None:
        raise UsageError(f"no {what} configured", hint="name an environment variable or a file that holds it")
    v = (os.environ if environ is None else environ).get(env, "").strip()
    if not v:
        raise UsageError(f"no {what}: ${env} is not set or empty", hint=f"export {env}=... or name a file that holds it")
    return v
