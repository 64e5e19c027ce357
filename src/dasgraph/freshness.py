"""Whether a whole ``make reproduce`` has anything to do, decided without importing torch.

Every stage skips its own finished work, but each pays an interpreter and a torch import to find
that out. After a complete run, ``write`` records a snapshot of the results tree (every file's
path, size and modification time), a digest of the code that made it (the package, the scripts,
the Makefile, the pinned requirements and the installed torch, transformers and pyvene) and the
run's settings (the Makefile's variables). ``check`` succeeds only when all three are exactly
as recorded: then every stage would find its work finished, and the run can stop at once. Any
difference (a file added, removed or touched, a changed line of code, another flag) fails the
check, and the stages run and skip as usual.

    python -m dasgraph.freshness check RESULTS KEY   # exit 0: nothing to do; 1: run the stages
    python -m dasgraph.freshness write RESULTS KEY   # after a complete run
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib import metadata
from pathlib import Path

from dasgraph import paths

# What the pipeline's outputs depend on besides the results tree itself, relative to the
# repository root (the folder holding the Makefile).
CODE = ("src/dasgraph", "mlp", "src/run_das.py", "Makefile", "requirements.txt")
LIBRARIES = ("torch", "transformers", "pyvene", "numpy", "scikit-learn", "networkx")


def snapshot(root: Path) -> dict[str, list[int]]:
    """relative path -> [size, mtime_ns] of every file under ``root`` but the stamp itself."""
    root, stamp = Path(root), paths.reproduce_stamp(root)
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if path != stamp:
                st = path.stat()
                out[str(path.relative_to(root))] = [st.st_size, st.st_mtime_ns]
    return out


def code_digest(repo: Path) -> str:
    """sha256 over the code's files (names and bytes), the root scripts and library versions."""
    digest = hashlib.sha256()
    files = [*sorted(Path(repo).glob("*.py"))]
    for entry in CODE:
        path = Path(repo) / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.is_file() else []
    for path in files:
        digest.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes() + b"\0")
    for library in LIBRARIES:
        try:
            digest.update(f"{library}={metadata.version(library)}\0".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{library}=absent\0".encode())
    return digest.hexdigest()


def record(root: Path, key: str, repo: Path) -> dict:
    return {"key": key, "code": code_digest(repo), "files": snapshot(root)}


def check(root: Path, key: str, repo: Path) -> bool:
    """True when the results tree, the code and the key are exactly as the last ``write``."""
    try:
        recorded = json.loads(paths.reproduce_stamp(root).read_text())
    except (OSError, ValueError):
        return False
    return recorded == record(root, key, repo)


def write(root: Path, key: str, repo: Path) -> None:
    stamp = paths.reproduce_stamp(root)
    tmp = stamp.with_name(stamp.name + ".tmp")
    tmp.write_text(json.dumps(record(root, key, repo)))
    os.replace(tmp, stamp)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or argv[0] not in ("check", "write"):
        print("usage: python -m dasgraph.freshness check|write RESULTS KEY", file=sys.stderr)
        return 2
    action, root, key = argv[0], Path(argv[1]), argv[2]
    repo = Path.cwd()
    if action == "write":
        write(root, key, repo)
        return 0
    if check(root, key, repo):
        print(f"nothing to do: {root} is exactly as the last complete run left it, with the same "
              f"code and settings (delete {paths.reproduce_stamp(root)} to make every stage "
              "check its work)")
        return 0
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
