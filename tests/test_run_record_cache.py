"""A sweep writes one run record per cell: the git commit and the library versions are read
once per process, not once per cell (two git processes and ~10 metadata reads each)."""
import subprocess

from dasgraph import runtime


def test_run_records_call_git_once_per_process(monkeypatch):
    calls = []
    real = subprocess.run

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    runtime.git_commit.cache_clear()
    monkeypatch.setattr(subprocess, "run", counting)
    first = [runtime.run_record(None, seed=i) for i in range(5)]
    assert len(calls) == 2                                  # rev-parse and status, once
    assert len({r["git_commit"] for r in first}) == 1
    versions = runtime.library_versions()
    versions["torch"] = "changed by a caller"               # a copy: the cache stays intact
    assert runtime.library_versions()["torch"] != "changed by a caller"
