"""Seeds, devices, run metadata, atomic writes and logging: what every stage shares.

Every artifact is written through ``atomic_*`` (temporary name, then rename) so an interrupted
run never leaves a half file that looks finished, and sits next to a ``run.json`` saying what
made it (``write_run_json``).
"""
from __future__ import annotations

import errno
import functools
import hashlib
import json
import logging
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from dasgraph import paths
from dasgraph.quiet import quiet_libraries

log = logging.getLogger(__name__)

LIBRARIES = ("torch", "transformers", "pyvene", "numpy", "networkx", "scikit-learn",
             "pandas", "matplotlib", "seaborn", "tqdm")


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2, nothing written."""


class ArtifactError(UsageError):
    """A file or folder a stage reads is missing, damaged, of the wrong kind or schema.

    The one line names the file, says what is wrong and which stage makes it again, e.g.
    ``results/iia.csv: has no column 'iia'; re-run evaluate_das.py with --overwrite``.
    """

    def __init__(self, path: object, problem: str, stage: str):
        super().__init__(str(path), problem, stage)    # args kept: pickles across workers
        self.path, self.problem, self.stage = str(path), problem, stage

    def __str__(self) -> str:
        fix = f"re-run {self.stage} with --overwrite" if self.stage.endswith(".py") else self.stage
        return f"{self.path}: {self.problem}; {fix}"


# --- seeds -----------------------------------------------------------------------------
def derive_seed(seed: int, *parts: object) -> int:
    """A seed for one unit of work (a sweep cell, a graph): stable across processes.

    Hashing the run seed with the unit's identity means a cell re-run alone draws exactly the
    numbers it drew inside the full sweep, whatever ran before it.
    """
    text = "/".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


def set_seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_determinism() -> None:
    import torch

    torch.use_deterministic_algorithms(True, warn_only=True)
    # Weights that decay towards zero produce subnormal floats, which make late epochs on the
    # CPU several times slower; flushing them changes nothing measurable and keeps runs fast.
    torch.set_flush_denormal(True)


# --- devices -----------------------------------------------------------------------------
@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block on ``n`` torch threads (restored after). Float reductions depend on the
    thread count, so work whose numbers must not depend on the machine pins it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(name: str = "auto") -> str:
    """'auto' -> 'cuda' when available, else 'cpu'. Explicit names are checked, never assumed."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        raise UsageError(f"--device {name!r} is not a device; use auto, cpu or cuda[:N]")
    return name


def check_memory(nbytes: float, what: str) -> None:
    """Refuse up front what cannot fit in half of this machine's memory, naming the size."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if nbytes > total / 2:
        raise UsageError(f"{what} needs about {nbytes / 2**30:,.1f} GiB of memory; this machine "
                         f"has {total / 2**30:,.1f} GiB: choose smaller settings")


# --- run metadata ------------------------------------------------------------------------
# Both are read once per process: a sweep writes a run record per cell (140 on the default,
# thousands at thesis scale), and the code and libraries a process runs are the ones it
# imported at its start, whatever happens to the checkout or the venv while it runs.
@functools.cache
def git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
        commit = out.stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("+dirty" if dirty and commit != "unknown" else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def library_versions() -> dict[str, str]:
    return dict(_library_versions())


@functools.cache
def _library_versions() -> tuple[tuple[str, str], ...]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return tuple(versions.items())


def run_record(args: Any, seed: int | None = None, device: str | None = None,
               **extra: Any) -> dict[str, Any]:
    """What made an artifact: command line, resolved arguments, seed, device, commit, versions."""
    arguments = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()} \
        if args is not None else {}
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "arguments": arguments,
        "seed": seed if seed is not None else arguments.get("seed"),
        "device": device if device is not None else arguments.get("device"),
        "torch_threads": _torch_threads(),
        "git_commit": git_commit(),
        "versions": library_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def _torch_threads() -> int | None:
    """Float reductions depend on the thread count: recorded so a re-run can match it."""
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:
        return None


def write_run_json(directory: Path, args: Any, **kwargs: Any) -> Path:
    path = Path(directory) / "run.json"
    atomic_write_json(path, run_record(args, **kwargs))
    return path


def sidecar_run_json(artifact: Path, args: Any, **kwargs: Any) -> Path:
    """``<artifact>.run.json`` beside a single-file artifact (CSV, NPY, PNG)."""
    path = Path(str(artifact) + ".run.json")
    atomic_write_json(path, run_record(args, **kwargs))
    return path


# --- atomic writes -------------------------------------------------------------------------
# Temporary names carry the writer's pid (".NAME.<pid>.<random>.tmp", ".NAME.partial-<pid>-
# <random>"), so a later writer of the same artifact can remove what a killed run left
# behind without touching the temporary files of a process that is still running.
def _tmp_prefix(path: Path, kind: str) -> str:
    return f".{path.name}.{kind}{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_leftovers(path: Path) -> None:
    """Delete the temporary files and folders of ``path`` left by writers that died."""
    path = Path(path)
    for kind in ("tmp", "partial-"):
        for leftover in path.parent.glob(f".{path.name}.{kind}*"):
            pid = leftover.name[len(f".{path.name}.{kind}"):].split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                log.info("removing %s, left by an interrupted run", leftover)
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path, "tmp"), suffix=".tmp" + path.suffix,
                               dir=path.parent)
    os.close(fd)
    try:
        with _writing(path):
            yield Path(tmp)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; results are for everyone to read
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# What a full disk or a file-size limit looks like: write errors carry no file name, and the
# writers of other libraries wrap them in their own exceptions (safetensors: "StorageFull",
# torch: "file write failed").
DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
_DISK_FULL_WORDS = ("No space left", "File too large", "StorageFull", "FileTooLarge",
                    "Disk quota", "file write failed", "iostream error",
                    "requested and")          # numpy's tofile: "N requested and M written"


def _disk_full(err: BaseException) -> bool:
    """Whether ``err`` or an exception it arose from is a full disk (torch's zip writer, for
    one, reports its stream's failure and then a second error of its own)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in DISK_FULL or \
                any(word in str(err) for word in _DISK_FULL_WORDS):
            return True
        err = err.__cause__ or err.__context__
    return False


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """A write error inside the block names ``path``, the artifact being written (an OSError
    without a file name, or another library's wrapping of a full disk), for run_main's line."""
    try:
        yield
    except OSError as err:
        if err.filename is not None:
            raise
        if err.errno is None and _disk_full(err):      # a short write, said in words
            raise OSError(errno.ENOSPC, f"no space left on the device, or a file-size limit "
                          f"reached ({err})", str(path)) from None
        raise type(err)(err.errno, err.strerror or str(err), str(path)) from None
    except Exception as err:  # noqa: BLE001 - re-raised unless it is a full disk in disguise
        if not _disk_full(err):
            raise
        raise OSError(errno.ENOSPC, "no space left on the device, or a file-size limit "
                      f"reached ({type(err).__name__})", str(path)) from None


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


@contextmanager
def atomic_directory(final: Path, overwrite: bool = False,
                     settings: dict | None = None) -> Iterator[Path]:
    """Build a whole directory under a temporary name; swap it in only when complete.

    A killed run leaves at most a hidden ``.name.partial-*`` folder (removed by the next
    writer of the same folder), never a folder at the final name that looks finished. The
    completion marker (``paths.DONE``) is written last, inside, before the swap, with the
    ``settings`` that made the folder (for :func:`finished`).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(final)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(final, "partial-"), dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)      # mkdtemp makes it private; results are ordinary folders
    try:
        with _writing(final):
            yield tmp
        for path in tmp.rglob("*"):   # some writers (safetensors) leave private 0600 files
            if path.is_file():
                path.chmod(0o666 & ~umask)
        write_done(tmp / paths.DONE, [p for p in tmp.rglob("*") if p.is_file()], settings)
        if final.exists():
            if not overwrite:
                raise UsageError(f"{final} already exists; pass --overwrite to replace it")
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# --- completion markers --------------------------------------------------------------------------
# "Finished" means: the marker is there, written after every file of the artifact, and every
# file it lists still has the size and sha256 it had then. A half-written, truncated or edited
# artifact is then redone (or refused by a reader), never trusted.
def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in blocks."""
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _digest(path: Path) -> dict:
    return {"size": path.stat().st_size, "sha256": file_sha256(path)}


def settings_hash(settings: dict) -> str:
    """A short content hash of the settings that determine an artifact (canonical JSON, so
    key order does not matter). The one settings hash of the package: completion markers,
    ``run.json`` and the sweep's cells all use it."""
    text = json.dumps(settings, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_done(marker: Path, files: list[Path], settings: dict | None = None) -> Path:
    """Write ``marker`` (last) recording the size and sha256 of each of ``files`` and, when
    given, the ``settings`` that made them and their :func:`settings_hash`."""
    marker = Path(marker)
    record = {"files": {os.path.relpath(f, marker.parent): _digest(Path(f))
                        for f in sorted(map(Path, files)) if Path(f) != marker}}
    if settings is not None:
        record["settings"] = json.loads(json.dumps(settings, default=_json_default))
        record["settings_hash"] = settings_hash(settings)
    atomic_write_json(marker, record)
    return marker


def check_done(marker: Path) -> str | None:
    """None if the artifact of ``marker`` is complete and intact, else what is wrong, in words."""
    marker = Path(marker)
    if not marker.is_file():
        return f"has no completion marker {marker.name} (unfinished, or made before markers)"
    try:
        files = read_json(marker)["files"]
        items = sorted(files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"has a damaged completion marker {marker.name}"
    artifact = artifact_of(marker)
    if not items or (artifact.parent == marker.parent and artifact.name not in files):
        # a marker that vouches for nothing (or not for its own file) finishes nothing
        return f"has a completion marker {marker.name} that does not list it (unfinished)"
    for name, expected in items:
        path = marker.parent / name
        if not path.is_file():
            return f"{name} is missing (listed in {marker.name})"
        try:
            if _digest(path) != expected:
                return f"{name} changed after it was written (truncated or damaged)"
        except OSError as err:
            return f"{name} cannot be read ({err.strerror})"
    return None


def is_done(marker: Path) -> bool:
    return check_done(marker) is None


def recorded_settings(marker: Path) -> dict | None:
    """The settings a completion marker recorded (None: it recorded none, or is unreadable)."""
    try:
        done = read_json(marker).get("settings")
    except (OSError, ValueError, AttributeError):
        return None
    return done if isinstance(done, dict) else None


def changed_settings(marker: Path, settings: dict) -> list[str]:
    """The keys whose value in ``settings`` differs from the one the marker recorded (all keys
    when the marker recorded none)."""
    done = recorded_settings(marker)
    if done is None:
        return sorted(settings)
    now = json.loads(json.dumps(settings, default=_json_default))
    return sorted(k for k in set(done) | set(now) if done.get(k) != now.get(k))


def artifact_of(marker: Path) -> Path:
    """What a completion marker completes: its folder (``paths.DONE`` inside it) or its file
    (``paths.done_marker``: ``.NAME.done`` beside it)."""
    marker = Path(marker)
    if marker.name.startswith(".") and marker.name.endswith(".done"):
        return marker.with_name(marker.name[1:-len(".done")])
    return marker.parent


def finished(marker: Path, settings: dict, overwrite: bool = False, what: str = "artifact",
             redo_changed: bool = False, quiet: bool = False) -> bool:
    """The one "skip if finished" rule. True (skip) when the artifact of ``marker`` is complete,
    intact and was made with the same ``settings``. False (do it, again) when it is missing,
    unfinished or damaged, or when ``overwrite``. UsageError naming the changed settings when it
    was finished with other ones: results made with other settings are never silently reused.
    With ``redo_changed`` (a cheap artifact that only follows its inputs, such as an evaluated
    cell) it is done again instead, with a log line naming the changed settings. ``quiet``: a
    skip is logged at debug level only (a fan-out stage logs one line for all its skips).

    ``marker`` is a folder's ``paths.DONE`` or a file's ``paths.done_marker``; the artifact
    records ``settings`` through ``write_done(marker, files, settings=...)`` (or
    ``atomic_directory(..., settings=...)``)."""
    marker = Path(marker)
    artifact = artifact_of(marker)
    if overwrite or not artifact.exists():
        return False
    problem = check_done(marker)
    if problem:
        if artifact.is_file() or any(artifact.iterdir()):
            log.warning("%s %s: doing it again", artifact, problem)
        return False
    changed = changed_settings(marker, settings)
    if changed:
        done, now = recorded_settings(marker), json.loads(json.dumps(settings, default=_json_default))
        which = "settings it did not record (made before artifacts recorded them)" if done is None \
            else "other settings (" + ", ".join(f"{k} {done.get(k)!r}, now {now.get(k)!r}"
                                                for k in changed) + ")"
        if redo_changed:
            log.info("%s (%s) was made with %s: doing it again", artifact, what, which)
            return False
        raise UsageError(f"{artifact} ({what}) was made with {which}; pass --overwrite to redo "
                         "it, or use another --results_path")
    log.log(logging.DEBUG if quiet else logging.INFO,
            "skipped %s: finished with the same settings (--overwrite redoes it)", artifact)
    return True


def recorded_digest(marker: Path, name: str) -> str | None:
    """The sha256 that the completion marker ``marker`` recorded for its file ``name`` (None if
    none). What is made *from* an artifact records this among its settings, so a result whose
    input was made again, differently, is never silently kept."""
    try:
        return read_json(marker)["files"][name]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


# Arguments that do not change what a stage computes: where it goes, how it is logged, where
# and how parallel it runs, and whether finished work is redone.
NOT_SETTINGS = frozenset({"results_path", "overwrite", "verbose", "device", "skip_existing",
                          "workers"})


def settings_of(args: Any, exclude: Any = ()) -> dict:
    """The settings of a stage's run, for :func:`finished` and :func:`write_done`: its resolved
    arguments less :data:`NOT_SETTINGS` and ``exclude``."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items())
            if k not in NOT_SETTINGS and k not in set(exclude)}


def parse_json(data: bytes | str) -> Any:
    """``json.loads``, with nesting too deep for the parser reported as the ValueError that bad
    JSON raises (json raises RecursionError there), so every caller's "not valid JSON" holds."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def read_json(path: Path) -> Any:
    """The JSON of a regular file (OSError for anything else: a FIFO would block the read)."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return parse_json(path.read_bytes())


# --- logging --------------------------------------------------------------------------------
def setup_logging(verbose: bool = False) -> None:
    """Configured once, in a script's main. Quietens the chatty libraries we import."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", force=True, stream=sys.stdout)
    # Log lines go to stdout; stderr keeps the one-line error of bad input and, on a terminal,
    # the progress bars (elsewhere they are log lines: dasgraph.progress).
    quiet_libraries()


def run_stage(parse_args, work, argv=None) -> int:
    """A script's whole ``main``: parse the flags, set up logging, log the resolved arguments,
    run ``work(args)``; returns the exit code as :func:`run_main` does."""

    def body(argv):
        args = parse_args(argv)
        setup_logging(args.verbose)
        logging.getLogger(work.__module__).info("arguments: %s", {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()})
        with _no_empty_folder_left(getattr(args, "results_path", None)):
            work(args)

    return run_main(body, argv)


@contextmanager
def _no_empty_folder_left(folder: Path | None) -> Iterator[None]:
    """A run that fails leaves no empty results folder behind: the folders it created on the
    way to ``folder`` are removed again if they are still empty (nothing else is touched)."""
    if folder is None:
        yield
        return
    folder = Path(folder).absolute()
    existed = next((p for p in (folder, *folder.parents) if p.exists()), None)
    try:
        yield
    except BaseException:
        for path in (folder, *folder.parents):
            if path == existed:
                break
            try:
                path.rmdir()          # only ever an empty folder
            except OSError:
                break
        raise


def run_main(body, argv=None) -> int:
    """Run a stage's body and return its exit code (so tests can call ``main([...])``).

    UsageError becomes one clear line on stderr and exit code 2; argparse's own errors
    (already printed as one line by ``cli.Parser``) keep their code.
    """
    tasks = sys.modules.get("dasgraph.tasks")
    if tasks is not None:       # a task file named on an earlier command is not named on this one
        tasks.forget_named()
    try:
        body(argv)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.filename is None:        # not about a path: a real failure, keep the traceback
            raise
        if err.errno in DISK_FULL:      # finished files are whole: atomic writes held
            print(f"error: {err.filename}: {err.strerror}; free space on that disk (or raise "
                  "the file-size limit) and run the same command again: finished work is kept",
                  file=sys.stderr)
            return 2
        # A path of the wrong kind or without permission met while writing (stages probe
        # their folders first; this is the net under that): one line naming the path.
        print(f"error: {err.filename}: {err.strerror}; move what is in the way or choose a "
              "--results_path you can write to", file=sys.stderr)
        return 2
    except SystemExit as stop:  # argparse: --help (0) or a bad flag (2)
        return stop.code if isinstance(stop.code, int) else 2
    return 0
