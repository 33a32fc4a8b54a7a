"""Files funcorr reads and writes: user-input errors, JSON readers that name the file, and
atomic writes that respect the umask and clean up after killed runs.

Every output is written to a temporary file beside it and renamed into place, so a crash
never leaves half a file. Temporary names are funcorr's own, ``.<name>.<host>.<pid>-<token>.tmp``,
so a later run can tell a temp file of a process that died (SIGKILL, power loss) from one that
another live process is still writing, and removes only the former.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class InputError(ValueError):
    """A user-supplied input (file, option value) is unusable; the message says why."""


# --------------------------------------------------------------------------- permissions


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # the only portable way to read it is to set it and restore it
    os.umask(mask)
    return mask


def _as_if_created(path: Path, mode: int) -> None:
    """Give ``path`` the permissions a plain ``open``/``mkdir`` would have given it.

    ``mkstemp``/``mkdtemp`` create 0600/0700 for privacy of *temporary* files; funcorr's temp
    files become outputs, which should follow the user's umask (0644 / 0755 under 022)."""
    os.chmod(path, mode & ~current_umask())


def make_temp_dir(parent: Path, prefix: str) -> Path:
    """A new folder inside ``parent`` that will be renamed into place: umask permissions."""
    path = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    _as_if_created(path, 0o777)
    return path


# --------------------------------------------------------------------------- temp files

_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<host>[0-9a-f]{6})\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")
# funcorr 0.1 named temp files ``.<name>.<random 8>.tmp`` (no owner): stale after this long.
_LEGACY_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
LEGACY_TEMP_AGE_S = 3600.0
# Folders already swept by this process: sweeping once per folder keeps a write O(1).
_swept: set[Path] = set()


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{_HOST}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def is_stale_temp(path: Path, now: float | None = None) -> bool:
    """Whether ``path`` is a funcorr temp file whose writer is gone (dead pid on this host,
    or a legacy / other-host temp file older than :data:`LEGACY_TEMP_AGE_S`)."""
    match = _TEMP.match(path.name)
    if match and match["host"] == _HOST:
        return not _pid_alive(int(match["pid"]))
    if match or _LEGACY_TEMP.match(path.name):
        try:
            age = (time.time() if now is None else now) - path.stat().st_mtime
        except OSError:
            return False
        return age > LEGACY_TEMP_AGE_S
    return False


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete funcorr temp files left in ``folder`` by killed runs; returns what was removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if (
            entry.name.startswith(".")
            and entry.name.endswith(".tmp")
            and entry.is_file(follow_symlinks=False)
        ):
            path = Path(entry.path)
            if is_stale_temp(path):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def _prepare_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"Cannot write into {folder}: it exists and is not a folder.") from None
    except OSError as err:
        raise InputError(f"Cannot create the folder {folder}: {err.strerror or err}.") from None
    if folder not in _swept:
        remove_stale_temps(folder)
        _swept.add(folder)


def _new_temp(path: Path) -> Path:
    tmp = _temp_name(path)
    # O_EXCL: never reuse a name, as mkstemp; the mode goes through the umask like any open().
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return tmp


@contextmanager
def atomic_paths(paths: Sequence[str | os.PathLike]) -> Iterator[list[Path]]:
    """Temporary paths for ``paths``, renamed into place together once the block succeeds.

    All files are written before any is published, so a failure while writing (disk full,
    an encoder error) leaves no partial set of outputs; on failure every temp file is removed.
    """
    targets = [Path(p) for p in paths]
    for target in targets:
        if target.is_dir():
            raise InputError(f"Cannot write {target}: it is a folder.")
        _prepare_folder(target.parent)
    temps: list[Path] = []
    try:
        temps = [_new_temp(target) for target in targets]
        yield temps
        for tmp, target in zip(temps, targets):
            # Some writers (safetensors) recreate the file 0600; outputs follow the umask.
            _as_if_created(tmp, 0o666)
            os.replace(tmp, target)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


class atomic_path:
    """Context manager yielding a temporary path that replaces ``path`` on success only."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._context = atomic_paths([self.path])

    def __enter__(self) -> Path:
        (self.tmp,) = self._context.__enter__()
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        return bool(self._context.__exit__(exc_type, exc, tb))


def check_output_folder(
    path: str | os.PathLike, option: str = "--out", label: str | None = None
) -> Path:
    """Refuse now, before any work, an output folder that could not be created or written: an
    existing file in the way, a read-only file system, no permission. Creates nothing.
    ``label`` names the output in messages (default: ``option`` and ``path``)."""
    path = Path(path)
    label = label or f"{option} {path}"
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        where = (
            "is a file, not a folder"
            if existing == path
            else f"cannot be created: {existing} is a file"
        )
        raise InputError(f"{label} {where}.")
    if not os.access(existing, os.W_OK | os.X_OK):
        if os.statvfs(existing).f_flag & os.ST_RDONLY:
            raise InputError(
                f"{label} cannot be written: {existing} is on a read-only file system."
            )
        raise InputError(f"{label} cannot be written: no permission to write in {existing}.")
    return path


def output_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """Create the output folder ``path`` (and parents); InputError naming ``option`` when that
    is impossible (an existing file, a read-only or full file system)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path} is a file, not a folder.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"Cannot create {option} folder {path}: {err.strerror or err}.") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"Cannot write into {option} folder {path}: permission denied.")
    return path


def write_all(
    folder: str | os.PathLike,
    writers: Mapping[str, Callable[[Path], object]],
    option: str = "--out",
) -> list[Path]:
    """Write a command's outputs into ``folder``: ``writers`` maps each file name to a function
    writing that file at the path it is given. Every file is written before any is renamed
    into place, so a failure (disk full) never leaves some outputs without the others."""
    folder = output_folder(folder, option)
    targets = [folder / name for name in writers]
    with atomic_paths(targets) as temps:
        for tmp, write in zip(temps, writers.values()):
            write(tmp)
    return targets


# --------------------------------------------------------------------------- reading


def read_json(path: str | os.PathLike, what: str = "") -> Any:
    """Parse a JSON file; any failure is an InputError naming the file (and ``what`` it is)."""
    path = Path(path)
    label = f"{what} {path}" if what else str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"No {label}.") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{label} is not UTF-8 text: {err.reason}.") from None
    except OSError as err:
        raise InputError(f"Cannot read {label}: {err.strerror or err}.") from None
    return parse_json(text, label)


def parse_json(text: str, label: str) -> Any:
    """``json.loads`` with errors (syntax, absurd nesting) as one InputError naming ``label``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{label} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})."
        ) from None
    except RecursionError:
        raise InputError(f"{label} is nested too deeply to be a funcorr JSON file.") from None


def confined(
    root: Path, relative: str | os.PathLike, what: str = "path", follow_links: bool = True
) -> Path:
    """``root / relative``, refused unless it stays inside ``root``: no absolute path, no
    ``..``, and (``follow_links``) no symbolic link inside ``root`` leading out of it. Dataset
    records may only name files of their dataset, whatever a hand-edited record says.
    ``follow_links=False`` keeps the lexical checks only, for datasets whose image folders are
    links to a shared store by design."""
    candidate = Path(relative)
    if not str(relative) or candidate.is_absolute() or ".." in candidate.parts:
        raise InputError(f"The {what} {str(relative)!r} in {root} leaves the dataset folder.")
    path = root / candidate
    if follow_links and not path.resolve().is_relative_to(root.resolve()):
        raise InputError(f"The {what} {str(relative)!r} in {root} leads out of the dataset folder.")
    return path
