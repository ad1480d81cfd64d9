"""garden_orbit.utils.atomic_write: files and folders appear complete or not at all."""

import glob
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from garden_orbit._tensorflow import tf
from garden_orbit.utils import atomic_write as aw


def _visible(directory) -> list[str]:
    return sorted(os.listdir(directory))


def test_write_text_and_bytes_replace_the_file_and_leave_nothing_else(tmp_path):
    path = tmp_path / "sub" / "params.yaml"
    aw.write_text(path, "a: 1\n")
    aw.write_text(path, "a: 2\nb: ü\n")
    assert path.read_text(encoding="utf-8") == "a: 2\nb: ü\n"
    aw.write_bytes(tmp_path / "model.bin", b"\x00\x01")
    assert (tmp_path / "model.bin").read_bytes() == b"\x00\x01"
    assert _visible(tmp_path / "sub") == ["params.yaml"]
    assert _visible(tmp_path) == ["model.bin", "sub"]


def test_new_files_take_the_umask_like_open_does(tmp_path):
    old = os.umask(0o022)
    try:
        aw.write_text(tmp_path / "a.txt", "x")
        with open(tmp_path / "b.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "a.txt").st_mode == os.stat(tmp_path / "b.txt").st_mode


def test_an_error_mid_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("old")

    def write_half_and_fail():
        with aw.atomic_write(path) as f:
            f.write("new, half written")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_half_and_fail()
    assert path.read_text() == "old"
    assert _visible(tmp_path) == ["metrics.json"]


def test_a_process_killed_mid_write_leaves_the_old_file_and_no_visible_temporary(tmp_path):
    path = tmp_path / "data.tfrecord"
    path.write_bytes(b"old records")
    script = textwrap.dedent(
        f"""
        import os, signal
        from garden_orbit.utils.atomic_write import atomic_write
        with atomic_write({str(path)!r}, "wb") as f:
            f.write(b"new records, cut short")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], check=False)
    assert result.returncode == -signal.SIGKILL
    assert path.read_bytes() == b"old records"
    # The killed writer's temporary file remains (nothing can remove it), hidden beside the
    # file: no glob of the data matches it, and its name says which process wrote it.
    assert glob.glob(str(tmp_path / "*")) == [str(path)]
    assert tf.io.gfile.glob(str(tmp_path / "data*")) == [str(path)]
    leftovers = [name for name in os.listdir(tmp_path) if name != "data.tfrecord"]
    assert len(leftovers) == 1
    assert leftovers[0].startswith(".data.tfrecord" + aw.TEMPORARY_MARKER)


def test_atomic_path_serves_writers_that_take_a_path(tmp_path):
    path = str(tmp_path / "train.tfrecord")
    with aw.atomic_path(path) as temporary, tf.io.TFRecordWriter(temporary) as writer:
        assert os.path.dirname(temporary) == str(tmp_path)
        writer.write(b"record")
    assert [r.numpy() for r in tf.data.TFRecordDataset(path)] == [b"record"]
    assert _visible(tmp_path) == ["train.tfrecord"]
    with pytest.raises(FileNotFoundError, match="nothing was written"), aw.atomic_path(path):
        pass
    assert _visible(tmp_path) == ["train.tfrecord"]


def test_atomic_write_rejects_bad_modes(tmp_path):
    with pytest.raises(ValueError, match="mode must be"), aw.atomic_write(tmp_path / "x", "a"):
        pass
    with (
        pytest.raises(ValueError, match="encoding"),
        aw.atomic_write(tmp_path / "x", "wb", encoding="utf-8"),
    ):
        pass
    with pytest.raises(ValueError, match="does not name"):
        aw.temporary_sibling("")


def test_write_directory_renames_a_complete_folder_and_never_overwrites(tmp_path):
    def write(folder):
        os.makedirs(folder)
        (open(os.path.join(folder, "saved_model.pb"), "wb")).close()

    target = tmp_path / "export" / "1"
    assert aw.write_directory(target, write) == str(target)
    assert _visible(target) == ["saved_model.pb"]
    with pytest.raises(FileExistsError, match="will not be overwritten"):
        aw.write_directory(target, write)
    assert _visible(tmp_path / "export") == ["1"]


def test_an_error_while_writing_a_folder_leaves_no_folder(tmp_path):
    def write(folder):
        os.makedirs(folder)
        (open(os.path.join(folder, "variables.index"), "wb")).close()
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        aw.write_directory(tmp_path / "ckpt", write)
    assert _visible(tmp_path) == []
    with (
        pytest.raises(FileNotFoundError, match="no folder"),
        aw.atomic_directory(tmp_path / "ckpt"),
    ):
        pass
    assert _visible(tmp_path) == []


def test_a_folder_that_appears_meanwhile_is_not_overwritten(tmp_path):
    target = tmp_path / "out"

    def write_while_another_writer_wins():
        with aw.atomic_directory(target) as folder:
            os.makedirs(folder)
            os.makedirs(target / "theirs")

    with pytest.raises(FileExistsError, match="appeared"):
        write_while_another_writer_wins()
    assert _visible(target) == ["theirs"]
    assert _visible(tmp_path) == ["out"]


def test_the_caller_may_name_the_temporary_folder(tmp_path):
    temporary = str(tmp_path / "out.tmp-custom")
    with aw.atomic_directory(tmp_path / "out", temporary=temporary) as folder:
        assert folder == temporary
        os.makedirs(folder)
    assert _visible(tmp_path) == ["out"]


def test_replace_swaps_in_the_new_folder_and_keeps_the_old_one_when_writing_fails(tmp_path):
    target = tmp_path / "converted"

    def write(name):
        def writer(folder):
            os.makedirs(folder)
            (open(os.path.join(folder, name), "wb")).close()

        return writer

    aw.write_directory(target, write("old.ckpt"))
    aw.write_directory(target, write("new.ckpt"), replace=True)
    assert _visible(target) == ["new.ckpt"]
    assert _visible(tmp_path) == ["converted"]

    def failing(folder):
        write("broken.ckpt")(folder)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        aw.write_directory(target, failing, replace=True)
    assert _visible(target) == ["new.ckpt"]
    assert _visible(tmp_path) == ["converted"]
