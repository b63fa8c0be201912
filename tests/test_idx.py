"""IDX I/O: round trips of every type, MNIST compatibility, and every bad input."""

import gzip
import os
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from encchain.idx import IDX_TYPES, IDXError, encode_idx, read_idx, read_raw_ubyte, write_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@settings(max_examples=60, deadline=None)
@given(
    array=st.sampled_from(DTYPES).flatmap(
        lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=5, min_side=0, max_side=6))
    ),
    gz=st.booleans(),
)
def test_round_trip_every_type_and_shape(tmp_path_factory, array, gz):
    path = tmp_path_factory.mktemp("rt") / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.dtype.isnative
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)  # NaNs compare equal here
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz


def test_high_rank_round_trip(tmp_path):
    a = np.arange(2, dtype=np.int32).reshape((2,) + (1,) * 63)  # rank 64, numpy's maximum
    write_idx(tmp_path / "r.idx", a)
    assert read_idx(tmp_path / "r.idx").shape == a.shape


def test_rank_beyond_numpy_is_a_clear_error(tmp_path):
    """IDX allows rank 255; numpy stops at 64: say so rather than crash."""
    (tmp_path / "r.idx").write_bytes(bytes([0, 0, 8, 255]) + struct.pack(">255I", *([1] * 255)) + b"x")
    _expect(tmp_path / "r.idx", "rank 255", "numpy")


def test_mnist_style_header_by_hand(tmp_path):
    """A file built byte by byte like train-images-idx3-ubyte.gz reads as MNIST does."""
    images = np.random.default_rng(0).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    raw = struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">III", 3, 28, 28) + images.tobytes()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    got = read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    assert got.shape == (3, 28, 28) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, images)
    labels = struct.pack(">HBBI", 0, 0x08, 1, 4) + bytes([5, 0, 4, 1])  # MNIST label file layout
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(labels)
    np.testing.assert_array_equal(read_idx(tmp_path / "train-labels-idx1-ubyte"), [5, 0, 4, 1])


def test_written_header_is_big_endian_mnist_layout(tmp_path):
    write_idx(tmp_path / "a.idx", np.zeros((20000, 24, 24), np.uint8))
    head = (tmp_path / "a.idx").read_bytes()[:16]
    assert head == bytes([0, 0, 8, 3]) + struct.pack(">III", 20000, 24, 24)
    write_idx(tmp_path / "f.idx", np.array([1.5], np.float32))
    assert (tmp_path / "f.idx").read_bytes() == bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 1) + struct.pack(">f", 1.5)


def test_gzip_output_is_deterministic(tmp_path):
    a = np.arange(100, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", a)
    write_idx(tmp_path / "b.gz", a)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes() == encode_idx(a, compress=True)


# -- bad input: one test per case -------------------------------------------------
def _header(code=0x08, dims=(2, 3)):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def _expect(path, *fragments):
    with pytest.raises(IDXError) as info:
        read_idx(path)
    msg = str(info.value)
    assert str(path) in msg, msg
    for f in fragments:
        assert f in msg, msg
    return info.value


def test_empty_file(tmp_path):
    (tmp_path / "e.idx").write_bytes(b"")
    _expect(tmp_path / "e.idx", "empty")


def test_missing_file(tmp_path):
    _expect(tmp_path / "nope.idx", "no such file")


def test_bad_magic(tmp_path):
    (tmp_path / "m.idx").write_bytes(b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"x")
    _expect(tmp_path / "m.idx", "bad magic")


def test_unknown_type_code(tmp_path):
    (tmp_path / "t.idx").write_bytes(_header(code=0x0A) + bytes(6))
    _expect(tmp_path / "t.idx", "unknown type code 0x0A")


def test_zero_rank(tmp_path):
    (tmp_path / "z.idx").write_bytes(bytes([0, 0, 8, 0]))
    _expect(tmp_path / "z.idx", "rank 0")


def test_absurd_rank_truncated_header(tmp_path):
    (tmp_path / "r.idx").write_bytes(bytes([0, 0, 8, 200]) + bytes(8))
    _expect(tmp_path / "r.idx", "truncated header", "200 dimension")


def test_truncated_data(tmp_path):
    (tmp_path / "d.idx").write_bytes(_header(dims=(2, 3)) + bytes(5))
    _expect(tmp_path / "d.idx", "truncated data", "(2, 3)")


def test_trailing_bytes(tmp_path):
    (tmp_path / "x.idx").write_bytes(_header(dims=(2, 3)) + bytes(7))
    _expect(tmp_path / "x.idx", "trailing bytes")


def test_trailing_bytes_gzip(tmp_path):
    (tmp_path / "x.idx.gz").write_bytes(gzip.compress(_header(dims=(2, 3)) + bytes(7)))
    _expect(tmp_path / "x.idx.gz", "trailing bytes")


def test_corrupt_gzip(tmp_path):
    good = bytearray(gzip.compress(_header(dims=(50, 50)) + os.urandom(2500)))
    good[30:40] = b"\xff" * 10
    (tmp_path / "c.idx.gz").write_bytes(bytes(good))
    _expect(tmp_path / "c.idx.gz", "corrupt gzip")


def test_truncated_gzip(tmp_path):
    good = gzip.compress(_header(dims=(50, 50)) + os.urandom(2500))
    (tmp_path / "c.idx.gz").write_bytes(good[: len(good) // 2])
    _expect(tmp_path / "c.idx.gz")


def test_dimensions_disagree_with_data(tmp_path):
    (tmp_path / "p.idx").write_bytes(_header(code=0x0C, dims=(4, 4)) + bytes(4 * 4 * 2))  # int32 needs 64 bytes
    _expect(tmp_path / "p.idx", "needs 64 bytes", "holds 32")


@pytest.mark.parametrize("gz", [False, True])
def test_huge_claim_fails_fast_without_allocating(tmp_path, gz):
    raw = _header(dims=(10**4, 10**4, 10**4)) + b"1234"  # claims 10**12 bytes, holds 4
    path = tmp_path / ("h.idx.gz" if gz else "h.idx")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    assert len(raw) == 20
    err = _expect(path, "truncated data")
    assert "1000000000000" in str(err)


def test_idxerror_is_valueerror():
    assert issubclass(IDXError, ValueError)


@pytest.mark.parametrize("array", [np.zeros(3, np.int64), np.zeros(3, bool), np.float16([1]), np.uint16([1])])
def test_write_rejects_dtypes_without_a_code(tmp_path, array):
    with pytest.raises(IDXError, match="no IDX type code"):
        write_idx(tmp_path / "a.idx", array)
    assert not list(tmp_path.iterdir())


def test_write_rejects_rank_zero(tmp_path):
    with pytest.raises(IDXError, match="rank 0"):
        write_idx(tmp_path / "a.idx", np.uint8(3))


def test_type_table_is_the_idx_standard():
    assert {c: dt.str for c, dt in IDX_TYPES.items()} == {
        0x08: "|u1", 0x09: "|i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# -- atomic writes -----------------------------------------------------------------
def test_interrupted_write_leaves_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "a.idx.gz"
    write_idx(path, np.arange(10, dtype=np.uint8))
    before = path.read_bytes()

    def crash(fd):
        raise KeyboardInterrupt("killed during fsync")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        write_idx(path, np.arange(1000, dtype=np.uint8))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.idx.gz"], "no temp file may be left behind"


# -- the original's header-less files ----------------------------------------------
def test_raw_ubyte_reads_with_shape(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, size=(5, 24, 24), dtype=np.uint8)
    (tmp_path / "original_dset-ubyte.gz").write_bytes(gzip.compress(images.tobytes()))
    np.testing.assert_array_equal(read_raw_ubyte(tmp_path / "original_dset-ubyte.gz", (5, 24, 24)), images)
    (tmp_path / "plain-ubyte").write_bytes(images.tobytes())
    np.testing.assert_array_equal(read_raw_ubyte(tmp_path / "plain-ubyte", (5, 24, 24)), images)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("n_bytes", [5 * 576 - 1, 5 * 576 + 1])
def test_raw_ubyte_wrong_size_is_an_error(tmp_path, gz, n_bytes):
    data = bytes(n_bytes)
    path = tmp_path / "d-ubyte"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(IDXError, match=r"\(5, 24, 24\)"):
        read_raw_ubyte(path, (5, 24, 24))


def test_raw_ubyte_bad_shape(tmp_path):
    (tmp_path / "d").write_bytes(b"1")
    with pytest.raises(ValueError, match="shape"):
        read_raw_ubyte(tmp_path / "d", (0, 24))


def test_idx_file_read_as_raw_reports_size(tmp_path):
    write_idx(tmp_path / "a.idx", np.zeros((2, 24, 24), np.uint8))
    with pytest.raises(IDXError, match="do not fit"):
        read_raw_ubyte(tmp_path / "a.idx", (2, 24, 24))
