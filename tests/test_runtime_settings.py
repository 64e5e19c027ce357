"""The one settings hash and the one "skip if finished" rule (runtime.finished)."""
import pytest

from dasgraph import paths, runtime


def test_settings_hash_ignores_key_order_and_sees_every_value():
    a = runtime.settings_hash({"lr": 0.01, "k": 4})
    assert a == runtime.settings_hash({"k": 4, "lr": 0.01})
    assert a != runtime.settings_hash({"k": 4, "lr": 0.001})
    assert a != runtime.settings_hash({"k": 4, "lr": 0.01, "seed": 1})


def test_finished_skips_same_settings_refuses_other_ones_and_redoes_damage(tmp_path):
    out = tmp_path / "cell"
    marker = out / "_DONE.json"
    settings = {"lr": 0.01, "k": 4}
    assert not runtime.finished(marker, settings)          # nothing there yet
    out.mkdir()
    (out / "a.txt").write_text("numbers")
    runtime.write_done(marker, [out / "a.txt"], settings=settings)
    assert runtime.finished(marker, dict(settings))
    assert not runtime.finished(marker, settings, overwrite=True)
    with pytest.raises(runtime.UsageError, match=r"other settings \(lr 0.01, now 0.1\)"):
        runtime.finished(marker, {"lr": 0.1, "k": 4})
    (out / "a.txt").write_text("numb")                      # truncated after the marker
    assert not runtime.finished(marker, settings)


def test_a_marker_without_settings_is_not_taken_for_any_settings(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    marker = runtime.write_done(tmp_path / "_DONE.json", [tmp_path / "a.txt"])
    with pytest.raises(runtime.UsageError, match="settings it did not record"):
        runtime.finished(marker, {"lr": 0.01})


def test_a_file_artifact_is_named_by_its_file_not_its_folder(tmp_path):
    """Single-file artifacts (a graph, a CSV) share a folder; the refusal names the file."""
    csv = tmp_path / "table.csv"
    csv.write_text("a\n1\n")
    (tmp_path / "other.csv").write_text("b\n")       # a sibling: not this artifact
    marker = paths.done_marker(csv)
    assert runtime.artifact_of(marker) == csv
    assert not runtime.finished(marker, {"k": 1})       # no marker yet: do it
    runtime.write_done(marker, [csv], settings={"k": 1})
    assert runtime.finished(marker, {"k": 1})
    with pytest.raises(runtime.UsageError, match=r"table\.csv \(artifact\) was made with other settings \(k 1, now 2\)"):
        runtime.finished(marker, {"k": 2})
    csv.unlink()
    assert not runtime.finished(marker, {"k": 1})
