"""Tests for `garden_orbit.actions.ExportSavedModel` and `ExportFileManager`."""

import os

import numpy as np
import pytest

from garden_orbit import actions
from garden_orbit._tensorflow import tf


class _Scale(tf.Module):
    """A one-variable model: y = w * x."""

    def __init__(self, w):
        super().__init__()
        self.w = tf.Variable(w)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def serve(self, x):
        return {"y": self.w * x}


def _make_dirs(tmp_path, *names):
    for name in names:
        (tmp_path / name).mkdir(parents=True)


def _serve(path, values):
    loaded = tf.saved_model.load(path)
    result = loaded.signatures["serving_default"](tf.constant(values, tf.float32))
    return result["y"].numpy()


def test_export_reloads_and_serves_the_right_output(tmp_path):
    model = _Scale(3.0)
    manager = actions.ExportFileManager(str(tmp_path / "saved_model"))
    export = actions.ExportSavedModel(model, manager, signatures=model.serve)
    assert export.last_export_path is None

    path = export({"accuracy": 0.9})

    assert path == str(tmp_path / "saved_model-0")
    assert export.last_export_path == path
    assert manager.managed_files == [path]
    np.testing.assert_allclose(_serve(path, [1.0, 2.0]), [3.0, 6.0])
    # Only the finished export is left in the directory: no temporary sibling.
    assert sorted(os.listdir(tmp_path)) == ["saved_model-0"]


def test_max_to_keep_deletes_the_oldest_exports(tmp_path):
    model = _Scale(1.0)
    step = tf.Variable(0, dtype=tf.int64)
    manager = actions.ExportFileManager(
        str(tmp_path / "saved_model"), max_to_keep=2, next_id_fn=step.numpy
    )
    export = actions.ExportSavedModel(model, manager, signatures=model.serve)
    for value in (100, 200, 300):
        step.assign(value)
        model.w.assign(float(value))
        export(None)

    base = str(tmp_path / "saved_model")
    assert manager.managed_files == [f"{base}-200", f"{base}-300"]
    assert sorted(os.listdir(tmp_path)) == ["saved_model-200", "saved_model-300"]
    # The kept exports hold the weights of their own step.
    np.testing.assert_allclose(_serve(f"{base}-300", [1.0]), [300.0])
    np.testing.assert_allclose(_serve(f"{base}-200", [1.0]), [200.0])


def test_managed_files_are_sorted_by_integer_id_and_only_match_digit_suffixes(tmp_path):
    _make_dirs(
        tmp_path,
        "saved_model-10",
        "saved_model-9",
        "saved_model-2",
        "saved_model-abc",
        "saved_model-3x",
        "saved_model-",
        "saved_model-4.tmp-123-abcdef",
        "other-1",
        "saved_model",
    )
    manager = actions.ExportFileManager(str(tmp_path / "saved_model"))
    base = str(tmp_path / "saved_model")
    assert manager.managed_files == [f"{base}-2", f"{base}-9", f"{base}-10"]


def test_managed_files_of_a_missing_directory_is_empty(tmp_path):
    manager = actions.ExportFileManager(str(tmp_path / "not_yet" / "saved_model"))
    assert manager.managed_files == []
    assert manager.next_name() == str(tmp_path / "not_yet" / "saved_model-0")


def test_next_name_continues_after_the_largest_id_and_never_repeats(tmp_path):
    base = str(tmp_path / "saved_model")
    manager = actions.ExportFileManager(base)
    assert manager.next_name() == f"{base}-0"
    assert manager.next_name() == f"{base}-1"  # Not reused, although nothing was written.
    _make_dirs(tmp_path, "saved_model-7")
    assert manager.next_name() == f"{base}-8"
    assert actions.ExportFileManager(base).next_name() == f"{base}-8"


def test_next_id_fn_must_return_a_non_negative_integer(tmp_path):
    base = str(tmp_path / "saved_model")
    assert actions.ExportFileManager(base, next_id_fn=lambda: np.int64(12)).next_name() == (
        f"{base}-12"
    )
    with pytest.raises(ValueError, match="must be >= 0"):
        actions.ExportFileManager(base, next_id_fn=lambda: -1).next_name()
    with pytest.raises(TypeError, match="must return an integer"):
        actions.ExportFileManager(base, next_id_fn=lambda: 1.5).next_name()


def test_clean_up_with_non_positive_max_to_keep_keeps_everything(tmp_path):
    _make_dirs(tmp_path, *(f"saved_model-{i}" for i in range(4)))
    for max_to_keep in (0, -1):
        manager = actions.ExportFileManager(str(tmp_path / "saved_model"), max_to_keep)
        manager.clean_up()
        assert len(manager.managed_files) == 4


def test_leftover_temporary_dir_of_a_killed_export_is_ignored_then_removed(tmp_path):
    model = _Scale(2.0)
    # A finished export, and what an export killed while writing id 4 leaves behind.
    _make_dirs(tmp_path, "saved_model-3", "saved_model-4.tmp-4242-0123456789ab/variables")
    (tmp_path / "saved_model-4.tmp-4242-0123456789ab" / "fingerprint.pb").write_bytes(b"\0")
    base = str(tmp_path / "saved_model")
    manager = actions.ExportFileManager(base, max_to_keep=5)

    assert manager.managed_files == [f"{base}-3"]

    path = actions.ExportSavedModel(model, manager, signatures=model.serve)(None)

    assert path == f"{base}-4"
    np.testing.assert_allclose(_serve(path, [5.0]), [10.0])
    assert sorted(os.listdir(tmp_path)) == ["saved_model-3", "saved_model-4"]


def test_a_failed_export_leaves_nothing_behind(tmp_path):
    model = _Scale(2.0)
    manager = actions.ExportFileManager(str(tmp_path / "saved_model"))
    # A signature must be a tf.function with an input signature or a concrete function.
    export = actions.ExportSavedModel(model, manager, signatures={"serving_default": 42})
    with pytest.raises((TypeError, ValueError)):
        export(None)
    assert os.listdir(tmp_path) == []
    assert export.last_export_path is None


def test_an_existing_target_is_a_clear_error_and_is_not_overwritten(tmp_path):
    model = _Scale(2.0)
    _make_dirs(tmp_path, "saved_model-7")
    (tmp_path / "saved_model-7" / "keep.txt").write_text("old export")
    manager = actions.ExportFileManager(str(tmp_path / "saved_model"), next_id_fn=lambda: 7)
    export = actions.ExportSavedModel(model, manager, signatures=model.serve)
    with pytest.raises(FileExistsError, match="saved_model-7"):
        export(None)
    assert os.listdir(tmp_path / "saved_model-7") == ["keep.txt"]
    assert os.listdir(tmp_path) == ["saved_model-7"]


def test_subdirectory_exports_and_clean_up(tmp_path):
    model = _Scale(4.0)
    base = str(tmp_path / "export" / "model")
    manager = actions.ExportFileManager(base, max_to_keep=1, subdirectory="serving")
    assert manager.next_name() == os.path.join(f"{base}-0", "serving")

    # An id directory without the subdirectory (an unfinished export) is not managed, and a
    # temporary subdirectory inside it is removed by clean_up.
    _make_dirs(tmp_path, "export/model-1/serving.tmp-1-feedfacefeed")
    assert manager.managed_files == []

    export = actions.ExportSavedModel(model, manager, signatures=model.serve)
    first = export(None)
    second = export(None)

    assert first == os.path.join(f"{base}-2", "serving")
    assert second == os.path.join(f"{base}-3", "serving")
    assert manager.managed_files == [second]
    np.testing.assert_allclose(_serve(second, [1.0]), [4.0])
    # The id directories remain; only the managed subdirectories and temporaries go.
    assert os.listdir(tmp_path / "export" / "model-1") == []
    assert os.listdir(tmp_path / "export" / "model-2") == []


def test_base_name_normalization_keeps_url_schemes():
    manager = actions.ExportFileManager("gs://bucket/run//export/saved_model/")
    assert manager.base_name == "gs://bucket/run/export/saved_model"


def test_invalid_names_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="must end with a name prefix"):
        actions.ExportFileManager("/")
    with pytest.raises(ValueError, match="must be a relative path"):
        actions.ExportFileManager(str(tmp_path / "m"), subdirectory="/abs")


def test_an_export_in_progress_is_invisible_under_its_final_name(tmp_path, monkeypatch):
    model = _Scale(2.0)
    base = str(tmp_path / "saved_model")
    manager = actions.ExportFileManager(base)
    real_save = tf.saved_model.save
    seen_while_writing = []

    def spying_save(obj, export_dir, **kwargs):
        real_save(obj, export_dir, **kwargs)
        # The SavedModel is complete in `export_dir` but not yet renamed: if the job died
        # now, this is what a restarted job would find.
        seen_while_writing.append((export_dir, manager.managed_files, os.path.exists(base + "-0")))

    monkeypatch.setattr(tf.saved_model, "save", spying_save)
    path = actions.ExportSavedModel(model, manager, signatures=model.serve)(None)

    [(written_to, managed, final_exists)] = seen_while_writing
    assert written_to != path
    assert os.path.dirname(written_to) == str(tmp_path)
    assert managed == []
    assert not final_exists
    assert manager.managed_files == [path]
