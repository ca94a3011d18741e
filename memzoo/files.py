"""Writing inside a folder without ever following a link, and folders checked before work.

Every file memzoo writes (checkpoints, resume states, tokenizers, reports, stores of the kNN
layer) goes through :func:`write_file` or :func:`write_file_with`: the file is created in a
fresh, randomly named private folder beside the target (``tempfile.mkdtemp``: like ``O_EXCL``,
it cannot exist before, so no link can wait there), then renamed over the target with
``os.replace``. A link planted at the target's name is replaced, never written through, and a
reader never sees half a file.

A run folder is memzoo's own: :func:`refuse_links` rejects one that is itself a link or holds
one anywhere inside (``last.tmp -> elsewhere/``), before anything is written or read there.

Operating-system failures become one-line ``MemzooError``s naming the path: "no space left
on device", "read-only file system", "not a directory", "file name too long".
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from memzoo.errors import MemzooError

MAX_NAME_BYTES = 255  # the longest file name ext4, xfs, btrfs and tmpfs take
FILE_MODE = 0o644  # every file memzoo writes is an output meant to be read, whatever the umask


def os_problem(err: OSError) -> str:
    """An ``OSError`` in a few words: "no space left on device", "read-only file system"..."""
    if err.errno == errno.ENOSPC:
        return "no space left on device"
    return (err.strerror or type(err).__name__).lower()


@contextmanager
def os_errors_named(path: str | Path, doing: str) -> Iterator[None]:
    """Turn an ``OSError`` raised inside into one ``MemzooError`` line: ``doing path: problem``."""
    try:
        yield
    except OSError as err:
        raise MemzooError(f"cannot {doing} {str(path)!r}: {os_problem(err)}") from None


def refuse_links(folder: str | Path, what: str = "run folder") -> None:
    """Raise a ``MemzooError`` if ``folder`` is a symbolic link or holds one at any depth.

    A missing folder passes (there is nothing to follow yet)."""
    folder = Path(folder)
    if folder.is_symlink():
        raise MemzooError(f"{what} {str(folder)!r} is a symbolic link; memzoo writes only into real folders")
    if not folder.exists():
        return
    for parent, dirs, files in os.walk(folder):  # followlinks=False: a link is listed, not entered
        for name in dirs + files:
            entry = Path(parent) / name
            if entry.is_symlink():
                raise MemzooError(
                    f"{what} {str(folder)!r} holds a symbolic link {str(entry)!r}; "
                    "remove it: memzoo never writes or reads through links in its folders"
                )


def path_inside(folder: str | Path, name: str, where: str) -> Path:
    """``folder / name`` once it is known to lie inside ``folder`` with links followed; a
    ``MemzooError`` naming ``where`` (e.g. ``"transcript.txt:3"``) for an absolute name, a
    ``..`` that climbs out, or a link that points outside."""
    root = Path(folder).resolve()
    if Path(name).is_absolute():
        raise MemzooError(f"{where}: {name[:120]!r} is an absolute path; name a file inside {str(folder)!r}")
    resolved = (root / name).resolve()
    if not resolved.is_relative_to(root) or resolved == root:
        raise MemzooError(f"{where}: {name[:120]!r} lies outside {str(folder)!r}; name a file inside it")
    return Path(folder) / name


def check_name_length(path: Path, what: str) -> None:
    """Refuse a path with a component longer than file systems take (before ``stat`` fails)."""
    if any(len(part.encode()) > MAX_NAME_BYTES for part in path.parts):
        raise MemzooError(f"{what} {str(path)[:80]!r}...: a name in it is longer than {MAX_NAME_BYTES} bytes")


def make_folder(path: str | Path, what: str = "folder") -> Path:
    """Create ``path`` (and its parents) if needed and return it; refuse a link at ``path``
    and a path that runs through a file."""
    path = Path(path)
    check_name_length(path, what)
    if path.is_symlink():
        raise MemzooError(f"{what} {str(path)!r} is a symbolic link; memzoo writes only into real folders")
    for ancestor in (path, *path.parents):
        if ancestor.exists() and not ancestor.is_dir():
            raise MemzooError(f"{what} {str(path)!r}: {str(ancestor)!r} is a file, not a folder")
    with os_errors_named(path, f"create {what}"):
        path.mkdir(parents=True, exist_ok=True)
    return path


def check_writable_folder(path: str | Path, what: str) -> Path:
    """Create folder ``path`` if needed and prove a file can be created in it (a probe file,
    removed at once), so a read-only or impossible destination fails before any work."""
    path = make_folder(path, what)
    with os_errors_named(path, f"write into {what}"):
        fd, probe = tempfile.mkstemp(prefix=".memzoo-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    return path


def check_output_file(path: str | Path, what: str) -> Path:
    """``path`` as a file that can be written, checked before any work: its folder created and
    a probe file written there. A ``MemzooError`` naming ``what`` (e.g. ``"--out"``) when
    ``path`` is a folder or not a regular file, its name is too long, or its folder cannot be
    created or written to (read-only, under a file, full)."""
    out = Path(path)
    check_name_length(out, what)
    if out.is_dir():
        raise MemzooError(f"{what} {str(out)!r} is a directory; give the file to write")
    check_writable_folder(out.parent, f"{what} folder")
    if out.exists() and not out.is_file():
        raise MemzooError(f"{what} {str(out)!r} exists and is not a regular file")
    return out


def write_file(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically, never through a link
    (see :func:`write_file_with`)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    return write_file_with(path, lambda fresh: fresh.write_bytes(payload))


def write_file_with(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Let ``write(fresh)`` create the file (e.g. ``safetensors.torch.save_file``,
    ``torch.save``), then move it to ``path`` atomically; return ``path``.

    ``fresh`` lies in a new private folder made with ``mkdtemp`` beside ``path`` (it cannot
    exist before, so nothing at that name can be a link), and ``os.replace`` renames it over
    ``path``: a link at ``path`` is replaced, never written through. The folder of ``path`` must
    exist; a failure leaves it as it was."""
    path = Path(path)
    scratch = fresh_folder(path.parent, f".{path.name[:64]}.tmp-")
    with os_errors_named(path, "write"):
        try:
            fresh = scratch / "file"
            try:
                write(fresh)
            except OSError:
                raise
            except Exception as err:  # a library's own error (safetensors, torch) for a full disk
                if _disk_full(err, scratch):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from None
                raise
            os.chmod(fresh, FILE_MODE)
            os.replace(fresh, path)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return path


def _disk_full(err: Exception, folder: Path) -> bool:
    """Whether ``err``, raised by a library writing into ``folder``, means the disk is full."""
    if "no space left on device" in str(err).lower() or "os error 28" in str(err).lower():
        return True
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


def fresh_folder(parent: str | Path, prefix: str) -> Path:
    """A new, empty folder ``parent/<prefix><random>`` (``mkdtemp``: never an existing name)."""
    with os_errors_named(parent, "create a folder in"):
        return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def remove_tree(path: str | Path) -> None:
    """Delete ``path``: a link is unlinked (its target untouched), a folder removed with its
    contents, a missing path ignored."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
