"""Hypothesis suite for load_points on generated CSV and .npy files (issue 11).

Every file either loads as a finite float64 array of shape (n_samples, n_features), or
raises ValueError/TypeError whose one-line message names the argument (path or columns);
never a MemoryError, a tokenize error or numpy's own text. Files of plain numbers written
with repr() read back exactly.
"""

import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ppl_mixtures import datasets

TMP = Path(tempfile.mkdtemp(prefix="fuzz_load_points_"))

CELLS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(
        [
            "",
            "NA",
            "nan",
            "null",
            "inf",
            "-inf",
            "1_000",
            "１２",
            "٣",
            "0x1A",
            "1e400",
            "-",
            ".",
            "e5",
            "1.5.2",
            "abc",
            " 3 ",
            "1;2",
            "\t4",
            '"5"',
            "waiting",
            "1,5",
        ]
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=4),
)


def _csv_text(rows):
    return "\n".join(",".join(row) for row in rows) + "\n"


CSV_ROWS = st.lists(st.lists(CELLS, min_size=1, max_size=3), min_size=0, max_size=6)
COLUMNS = st.one_of(
    st.none(),
    st.integers(-1, 3),
    st.sampled_from(["waiting", "x", 1.5, True]),
    st.lists(st.one_of(st.integers(0, 3), st.just("waiting")), max_size=2),
)


def _npy_bytes(header: str, payload: bytes) -> bytes:
    text = header.encode("latin1")
    text += b" " * (64 - (10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


HEADERS = st.one_of(
    st.builds(
        lambda descr, shape: (
            f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
        ),
        st.sampled_from(["<f8", "<i4", "|O", "<m8[s]", "zz", "<c16", "|b1"]),
        st.one_of(
            st.tuples(st.integers(-2, 10**10)), st.tuples(st.integers(0, 5), st.integers(0, 10**5))
        ),
    ),
    st.text(alphabet="{}()[]':,<f8 descrshapeTrue\"\\", max_size=60),
)


def _check_outcome(path, **kwargs):
    """Load; assert the documented outcome; return the array or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # numeric-header notice
            out = datasets.load_points(path, **kwargs)
    except (ValueError, TypeError) as err:
        message = str(err)
        named = message.split(":", 1)[0]
        assert named in ("path", "columns"), message
        assert "\n" not in message and "expected" in message, message
        event(f"{type(err).__name__} naming {named}")
        return None
    event("loaded")
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.ndim == 2
    assert out.shape[0] >= 1 and out.shape[1] >= 1 and np.all(np.isfinite(out))
    return out


@settings(max_examples=200)
@given(rows=CSV_ROWS, columns=COLUMNS, dropna=st.booleans())
def test_generated_csv_files(rows, columns, dropna):
    path = TMP / "data.csv"
    path.write_text(_csv_text(rows), encoding="utf-8")
    _check_outcome(path, columns=columns, dropna=dropna)


@settings(max_examples=200)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(1, 3)),
        elements=st.floats(allow_nan=False, allow_infinity=False),
    )
)
def test_csv_of_plain_numbers_round_trips(values):
    path = TMP / "plain.csv"
    path.write_text(_csv_text([[repr(float(x)) for x in row] for row in values]))
    out = _check_outcome(path)
    np.testing.assert_array_equal(out, values)


@settings(max_examples=200)
@given(
    st.one_of(
        st.builds(_npy_bytes, HEADERS, st.binary(max_size=64)),
        # a valid file cut short or with bytes flipped
        st.tuples(
            hnp.arrays(
                st.sampled_from([np.float64, np.int32, np.float32, np.bool_]),
                hnp.array_shapes(max_dims=3, max_side=4),
            ),
            st.integers(0, 200),
            st.binary(min_size=0, max_size=3),
        ).map(lambda t: _mutated_npy(*t)),
    )
)
def test_generated_npy_files(raw):
    path = TMP / "data.npy"
    path.write_bytes(raw)
    _check_outcome(path)


def _mutated_npy(array, cut, noise):
    path = TMP / "source.npy"
    np.save(path, array)
    raw = path.read_bytes()
    cut = min(cut, len(raw))
    return raw[:cut] + noise + raw[cut + len(noise) :] if noise else raw[: len(raw) - cut // 8]
