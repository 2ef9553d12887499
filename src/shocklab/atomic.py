"""Atomic output directories: build in a temporary sibling, rename into place at the end.

Guarantees (README "Reliability"):

* A failed run leaves no half-written directory and never damages an earlier one.
* Only ShockLab outputs are replaced: every output directory carries a marker file
  (``.shocklab-output``); an existing directory without it (and not a legacy ShockLab output, and
  not empty) is refused unless the caller allows it (``--force``, see ``allow_replace``), and is
  then moved aside to ``<name>.kept-N``, not deleted.
* One writer per target: a lock file beside the target (``.<name>.writelock``, ``flock``, removed
  when released) makes a second writer wait (``SHOCKLAB_LOCK_TIMEOUT`` seconds, default 600) instead
  of racing.
* The swap is recoverable: the previous version is moved aside to ``.<name>.old-<pid>`` before the
  new one is renamed in. If the process dies between the two renames, the next writer of the same
  target (under the lock) puts the previous version back first; stale ``.<name>.tmp-*``,
  ``.<name>.old-*`` and ``.<name>.trash-*`` siblings left by killed runs are removed then too. A
  replaced version is renamed to ``.<name>.trash-*`` before it is deleted, so a copy half deleted
  by a kill is never the one restored.
* A failed write removes the directories it created for a new nested ``--out``, if still empty.

Size (~560 lines, one module on purpose): the lock, the swap, its recovery and the checks of what
may be replaced are one protocol, and each relies on the others' invariants (what a directory is,
data set, run, experiment or a user's folder, is read by ``shocklab.outkind``).
"""

from __future__ import annotations

import contextvars
import errno
import json
import logging
import math
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .children import not_inherited
from .errors import InputError
from .outkind import (  # noqa: F401 - read here and re-exported (the callers' one import)
    KIND_NAMES,
    MARKER,
    check_not_nested,
    is_shocklab_output,
    nested_output,
    output_kind,
    read_marker,
    user_files,
)

log = logging.getLogger("shocklab.atomic")

_FORCE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "shocklab_force_replace", default=False
)
_rename = os.replace  # one seam for fault-injection tests of the swap
_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


@contextmanager
def allow_replace(force: bool = True) -> Iterator[None]:
    """Within this block, ``atomic_dir`` may replace a directory that is not a ShockLab output
    (the CLIs' ``--force``)."""
    token = _FORCE.set(bool(force))
    try:
        yield
    finally:
        _FORCE.reset(token)


def check_kind(target: str | Path, kind: str, flag: str = "--out") -> None:
    """Refuse to replace an existing ShockLab output of another kind (a data set with a report,
    a report with a data set): both carry the marker, so the marker alone does not protect the
    user's data. ``--force`` (the caller) skips this check."""
    target = Path(target)
    have = output_kind(target) if target.is_dir() else None
    if have is not None and have != kind:
        raise InputError(
            f"{flag} {target}: is a ShockLab {KIND_NAMES[have]}; refusing to replace it with a "
            f"{KIND_NAMES[kind]} — choose another output path, or pass --force to move it aside "
            f"to {_kept_name(target).name} (nothing is deleted)"
        )


def check_resumable(target: str | Path, kind: str, flag: str = "--out",
                    other: Callable[[Path], str | None] | None = None,
                    force: bool = False) -> tuple[Path, bool]:
    """For outputs written in place and resumed (experiments): the target may be missing, empty
    or an earlier output of the same ``kind`` — and the same output: ``other(target)`` describes
    an earlier output of this kind that is another one (another experiment), None when it is this
    one. Anything else (a user's folder, a data set, a report, another experiment) is refused —
    files would be mixed into it, or replaced — unless ``force``. Returns the target and whether
    the caller must move what is there aside (``set_aside``) before writing: only when forced,
    and only when it is not this output (whose rerun resumes)."""
    target = check_writable_parent(target, renamed=False)   # written in place: a mount will do
    have = output_kind(target) if target.is_dir() and any(target.iterdir()) else kind
    if have != kind:
        what = ("is " + (f"a ShockLab {KIND_NAMES[have]}" if have
                         else "a folder ShockLab did not write") + f", not an {KIND_NAMES[kind]}")
    else:
        what = other(target) if other is not None and target.is_dir() else None
        what = None if what is None else f"holds {what}"
    if what is not None and not force:
        raise InputError(
            f"{flag} {target}: {what}; refusing to write into it — choose another output path, "
            f"or pass --force to move it aside to {_kept_name(target).name} (nothing is deleted)"
        )
    if what is not None and os.path.ismount(target):   # set_aside's rename: EBUSY, exit 3
        raise InputError(f"{flag} {target}: {what}, and is a mount point, which cannot be moved "
                         "aside; give a sub-directory of it, or empty it yourself")
    return target, what is not None


def set_aside(target: str | Path) -> Path:
    """Move ``target`` to ``<name>.kept-N`` beside it (``--force`` over an output written in
    place that is not the caller's: kept, never deleted); one warning line names it."""
    target = Path(target)
    kept = _kept_name(target)
    _rename(target, kept)
    log.warning("%s: held another output; moved aside to %s (--force keeps, never deletes, what "
                "was there)", target, kept)
    return kept


def claim_dir(target: str | Path, kind: str, owner: dict | None = None) -> Path:
    """Create ``target`` (written in place, see ``check_resumable``) with a marker naming its
    kind (and ``owner``: which output of that kind, e.g. an experiment's name), so that an
    interrupted first run can be resumed and is recognised."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    marker = target / MARKER
    if not marker.is_file():
        from . import __version__
        meta = {"kind": kind, "shocklab_output": True, "version": __version__}
        if owner is not None:
            meta["owner"] = owner
        atomic_write_text(marker, json.dumps(meta, sort_keys=True) + "\n")
    return target


SIBLING_EXTRA = 32   # ".", ".tmp-" + a pid + "-" + 12 hex digits (".writelock" is shorter)


def check_writable_parent(target: str | Path, renamed: bool = True) -> Path:
    """Return the target; raise InputError if it is not a usable output path: empty, the
    filesystem root, the current directory or one of its ancestors, under a file, unwritable,
    or — for an output swapped in by renaming (``renamed``) — a mount point."""
    if target is None or not str(target).strip():
        raise InputError("output path is empty: give a directory name (e.g. --out data)")
    target = Path(target)
    resolved = target.resolve()
    if target.name == "..":   # 'd/x/..' is d: renaming '..' aside (--force) was EBUSY, exit 3
        target = resolved
    if resolved == Path(resolved.anchor) or resolved.parent == resolved:
        raise InputError(f"{target}: output path is the filesystem root; give a sub-directory")
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise InputError(
            f"{target}: output path is the current directory or contains it; give a sub-directory"
        )
    if resolved == Path.home().resolve():
        raise InputError(f"{target}: output path is the home directory; give a sub-directory")
    if renamed and os.path.ismount(resolved):   # the final rename failed after the work: EBUSY
        raise InputError(f"{target}: output path is a mount point, which an output cannot "
                         "replace (it is swapped in by renaming); give a sub-directory of it, "
                         f"e.g. {target / 'out'}")
    parent = target.parent if str(target.parent) else Path(".")
    probe = parent
    while not probe.exists():  # the nearest existing ancestor must be a writable directory
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{target}: output path is under a file ({probe}), not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{target}: output location is not writable ({probe})")
    # the lock and temporary siblings (".NAME.writelock", ".NAME.tmp-PID-HEX") must fit in a
    # name too: a legal 250-character --out was "cannot create lock file … (File name too long)"
    try:
        name_max = os.pathconf(probe, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    n = len(os.fsencode(target.name))
    if n + SIBLING_EXTRA > name_max:
        raise InputError(f"{target}: its name is {n} bytes; at most {name_max - SIBLING_EXTRA} "
                         "fit (ShockLab writes .NAME.writelock and .NAME.tmp-… beside it)")
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: output path exists and is not a directory")
    if target.is_symlink() and not target.exists():   # found only at the final rename (exit 3)
        raise InputError(f"{target}: output path is a symbolic link to a missing "
                         f"{os.readlink(target)}; remove the link or create its target")
    return target


def validate_out(target: str | Path, inputs: Iterable[str | Path | None] = (), flag: str = "--out",
                 force: bool | None = None, kind: str | None = None) -> Path:
    """``check_writable_parent`` plus: not inside (or around) an input, and — unless forced — not
    an existing directory that ShockLab did not write, nor a ShockLab output of another ``kind``
    (``data``, ``run``, ``experiment``). Call it before any work is done."""
    target = check_writable_parent(target)
    resolved = target.resolve()
    for inp in inputs:
        if inp is None or not str(inp).strip():
            continue
        ip = Path(inp).resolve()
        if resolved == ip or ip in resolved.parents:
            raise InputError(
                f"{flag} {target}: is inside the input {inp}; write the output elsewhere"
            )
        if resolved in ip.parents:
            raise InputError(
                f"{flag} {target}: contains the input {inp}; replacing it would delete the input"
            )
    check_not_nested(target, flag)
    check_may_replace(target, kind, force, flag)
    return target


def check_may_replace(target: Path, kind: str | None = None, force: bool | None = None,
                      flag: str = "--out") -> None:
    """What an output may replace, unless forced: not a directory ShockLab did not write, nor a
    ShockLab output of another ``kind``, nor one holding another output (``validate_out``'s
    checks of what stands there; the API asks it before answering a POST)."""
    check_replaceable(target, force)
    if kind is not None and not (_FORCE.get() if force is None else force):
        check_kind(target, kind, flag)
    check_holds_no_output(target, kind, force, flag)


def check_replaceable(target: Path, force: bool | None = None) -> None:
    force = _FORCE.get() if force is None else force
    if target.is_dir() and not force and not is_shocklab_output(target):
        raise InputError(
            f"{target}: exists and is not a ShockLab output (no {MARKER} marker); refusing to "
            "replace it — choose another output path, or pass --force to replace it (its files "
            f"are then moved aside to {target.name}.kept-N, not deleted)"
        )


def check_holds_no_output(target: Path, kind: str | None = None, force: bool | None = None,
                          flag: str = "--out") -> None:
    """Replacing an output deletes it whole: one that holds another ShockLab output (a run
    written into an earlier run's directory before that was refused) is refused unless forced,
    and forced, it is moved aside whole (``atomic_dir``), never deleted."""
    force = _FORCE.get() if force is None else force
    if force or not target.is_dir() or not is_shocklab_output(target):
        return
    if kind is not None and output_kind(target) not in (None, kind):
        return   # another kind: check_kind refuses it
    inner = nested_output(target)
    if inner is not None:
        raise InputError(
            f"{flag} {target}: holds another ShockLab output ({inner}); replacing it would delete "
            f"that one — move it out first, or pass --force to move {target.name} aside to "
            f"{_kept_name(target).name} (nothing is deleted)")


def lock_timeout() -> float:
    """``SHOCKLAB_LOCK_TIMEOUT`` in seconds (default 600; a negative one does not wait): a word
    was an internal error, and ``nan`` made a second writer wait for ever."""
    raw = os.environ.get("SHOCKLAB_LOCK_TIMEOUT", "600")
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if math.isnan(value):
        raise InputError(f"SHOCKLAB_LOCK_TIMEOUT: expected a number of seconds, got {raw!r}")
    return max(value, 0.0)


@contextmanager
def _target_lock(parent: Path, name: str, wait: bool = True) -> Iterator[None]:
    """Exclusive lock per target (POSIX ``flock``; elsewhere no lock). The lock file is deleted
    by its holder before release; a waiter that then holds a deleted file's lock starts over.
    ``wait=False``: a target another process holds is an InputError at once. A forked child
    does not hold it (``children.not_inherited``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    timeout = lock_timeout()
    path = parent / f".{name}.writelock"
    deadline = time.monotonic() + timeout
    waited = False
    while True:
        try:
            f = open(path, "a+b")  # noqa: SIM115 - held for the whole block
        except OSError as exc:
            raise InputError(
                f"{parent / name}: cannot create lock file {path.name} ({exc.strerror})"
            ) from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            if not wait:
                raise InputError(
                    f"{parent / name}: another ShockLab process is writing it now (lock "
                    f"{path}); wait for it to finish, or choose another output path"
                ) from None
            if not waited:
                log.info("%s: another ShockLab process is writing it; waiting", parent / name)
                waited = True
            if time.monotonic() >= deadline:
                raise InputError(
                    f"{parent / name}: another ShockLab process is still writing it after "
                    f"{timeout:.0f} s (lock {path}); try again later"
                ) from None
            time.sleep(0.05)
            continue
        try:
            same = os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        f.close()  # the previous holder deleted it while we waited: lock the new one
    owner = os.getpid()
    not_inherited(f)
    try:
        yield
    finally:
        if os.getpid() == owner:  # never in a forked child: the lock and its file are the parent's
            not_inherited(f, False)
            try:
                path.unlink()
            except OSError:
                pass
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            f.close()


@contextmanager
def exclusive_output(target: str | Path) -> Iterator[Path]:
    """Hold ``target``'s writer lock (the one ``atomic_dir`` takes) for a whole run that writes
    in place (an experiment): a second run into it is an InputError at once, not a mix of two
    runs' files. Creates ``target``'s parent for the lock file."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _target_lock(target.parent, target.name, wait=False):
        yield target


@contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold ``path``'s writer lock (waiting up to ``SHOCKLAB_LOCK_TIMEOUT``) for a
    read-check-write sequence on a state file that two processes may run at once."""
    path = Path(path)
    with _target_lock(path.parent, path.name):
        yield


def _siblings(target: Path, kind: str) -> list[Path]:
    prefix = f".{target.name}.{kind}-"
    try:
        return sorted(
            (p for p in target.parent.iterdir() if p.name.startswith(prefix) and p.is_dir()),
            key=lambda p: p.stat().st_mtime,
        )
    except OSError:
        return []


def recover(target: str | Path) -> bool:
    """Repair what a killed writer left (call under the target's lock): put the previous version
    back if the target is missing, and delete stale temporary / set-aside siblings. Returns True
    when a previous version was restored."""
    target = Path(target)
    restored = False
    olds = _siblings(target, "old")
    if not target.exists() and olds:
        _rename(olds[-1], target)  # the newest set-aside copy is the last complete version
        log.warning(
            "%s: restored the previous version that an interrupted run had set aside", target
        )
        olds = olds[:-1]
        restored = True
    for p in olds + _siblings(target, "tmp") + _siblings(target, "trash"):
        log.info("%s: removing stale %s", target, p.name)
        _remove(p)
    return restored


@contextmanager
def atomic_dir(
    target: str | Path, force: bool | None = None, marker: bool = True, kind: str | None = None
) -> Iterator[Path]:
    """Yield a temporary directory next to ``target``; on success it replaces ``target``.

    force : replace ``target`` even if it is not a ShockLab output (None: ``allow_replace``);
        such a folder is moved aside to ``<name>.kept-N``, never deleted.
    marker : write the marker file (False for a sub-directory of an output that has its own;
        what it replaces is then the output's own, and is deleted).
    kind : what is written (``data``, ``run``): an earlier output of the same kind is replaced,
        one of another kind (forced: a data set under a report's name) is kept like a foreign
        folder, as ``<name>.kept-N``.
    """
    target = check_writable_parent(target)
    made = _missing(target.parent)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _unmake(made)
        raise InputError(f"{target}: cannot create output directory ({exc.strerror})") from None
    with _unmade_on_failure(made), _target_lock(target.parent, target.name):
        recover(target)
        check_replaceable(target, force)
        if marker and kind is not None and not (_FORCE.get() if force is None else force):
            # again under the lock: another kind of run may have written it since the CLI's check
            # (it was moved aside to .kept-N without --force)
            check_kind(target, kind)
        check_holds_no_output(target, kind, force)
        # forced over a folder ShockLab did not write: its files are the user's; keep them (a
        # sub-directory of an output, marker=False, is the output's own)
        foreign = marker and target.is_dir() and not is_shocklab_output(target)
        have = output_kind(target) if marker and kind is not None and target.is_dir() else None
        other = not foreign and have not in (None, kind)   # forced over another kind of output
        # forced over an output holding another output: kept whole, as a foreign folder
        inner = nested_output(target) if marker and target.is_dir() and not foreign else None
        committed = False
        tmp: Path | None = None
        try:
            # everything from here to the rename is inside one try: a signal (SIGTERM is raised
            # as an exception in the main thread) anywhere in it removes the temporary directory
            # the name is known before the directory exists: a signal right after the mkdir
            # still finds it to remove (tempfile.mkdtemp returns the name only after creating
            # it, and a CI run once saw its directory left behind). The pid and 48 random bits
            # make the name this run's own, so the cleanup never removes another's directory.
            while True:
                tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(6)}"
                try:
                    os.mkdir(tmp)   # the usual mode (umask applied), as an output gets
                    break
                except FileExistsError:
                    continue
                except OSError as exc:
                    tmp = None
                    raise InputError(
                        f"{target}: cannot create output directory ({exc.strerror})") from None
            try:
                yield tmp
            except OSError as exc:
                # a full or read-only disk while writing: name the output, not a temporary path
                # (write() itself gives no file name)
                if exc.errno in _SPACE_ERRNOS and (
                    not exc.filename or str(tmp) in str(exc.filename)
                ):
                    exc.filename = str(target)
                raise
            from . import __version__
            if marker:
                (tmp / MARKER).write_text(
                    json.dumps({"shocklab_output": True, "version": __version__}, sort_keys=True)
                    + "\n",
                    encoding="utf-8",
                )
            old = None
            # an earlier output of this kind holding files no such output writes (a user's
            # notes put in a run directory): kept whole, as a foreign folder, not deleted
            extra = (user_files(target, kind, {p.name for p in tmp.iterdir()})
                     if marker and kind is not None and target.is_dir()
                     and not (foreign or other or inner) else [])
            try:
                if target.exists():
                    old = (_kept_name(target) if foreign or other or inner or extra
                           else target.parent / f".{target.name}.old-{os.getpid()}")
                    _rename(target, old)
                _rename(tmp, target)
                committed = True
            except OSError:  # a kill between the renames is repaired by the next run's recover()
                if old is not None and old.exists() and not target.exists():
                    _rename(old, target)
                raise
        finally:
            if not committed and tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and extra and not (foreign or other or inner):
            log.warning("%s: the earlier %s held files it does not write (%s%s): it was moved "
                        "whole to %s, not deleted", target, KIND_NAMES.get(kind or "", "output"),
                        ", ".join(extra[:3]), " …" if len(extra) > 3 else "", old)
        elif old is not None and (foreign or other or inner):
            was = (f"a ShockLab {KIND_NAMES[have]}" if other else "not a ShockLab output"
                   if foreign else f"holding another ShockLab output ({inner})")
            log.warning("%s: was %s; its earlier files were moved to %s (--force replaces, never "
                        "deletes, what is not an earlier %s)", target, was, old,
                        KIND_NAMES.get(kind or "", "output of this kind"))
        elif old is not None:
            _discard(old, target)


def _missing(directory: Path) -> list[Path]:
    """``directory`` and those of its ancestors that do not exist yet, deepest first."""
    return [d for d in (directory, *directory.parents) if not os.path.lexists(d)]


def _unmake(made: list[Path]) -> None:
    """Remove the directories an output's write created (deepest first) while they are empty."""
    for d in made:
        try:
            os.rmdir(d)
        except OSError:
            break


@contextmanager
def _unmade_on_failure(made: list[Path]) -> Iterator[None]:
    """A failed write leaves no empty directories it created for ``--out new/nested/path``."""
    try:
        yield
    except BaseException:
        _unmake(made)
        raise


def _discard(old: Path, target: Path) -> None:
    """Delete the replaced version: first renamed to ``.NAME.trash-…`` (one rename), then removed.
    A copy half deleted under its ``.old-`` name (a kill during the removal) was restored by a
    later run as the output when the target had gone meanwhile (audit 2026-12-05: 36 of 37
    files); ``recover`` restores only ``.old-`` copies, which are whole, and removes ``trash``."""
    trash = target.parent / f".{target.name}.trash-{os.getpid()}-{secrets.token_hex(6)}"
    try:
        _rename(old, trash)
    except OSError:
        trash = old   # cannot rename (vanished, or a filesystem refusing it): remove in place
    _remove(trash)


def _remove(path: Path) -> None:
    """Delete a set-aside or temporary sibling; a symlink (--out was a link to an earlier output)
    is unlinked, not followed: rmtree refused it, and ``.NAME.old-PID`` stayed for good."""
    if path.is_symlink():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _kept_name(target: Path) -> Path:
    """``<name>.kept-N`` beside the target, the first N not taken: where ``--force`` moves a
    folder ShockLab did not write (a user's files are never deleted)."""
    n = 1
    while (target.parent / f"{target.name}.kept-{n}").exists():
        n += 1
    return target.parent / f"{target.name}.kept-{n}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a single file atomically (temp file in the same directory, then rename)."""
    path = Path(path)
    made = _missing(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _unmade_on_failure(made):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; an ordinary mode
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
