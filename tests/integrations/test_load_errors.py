"""``bp.load`` on files that are not models: the message says what the file is not and what
blockprop reads, and never passes on NumPy's advice about an ``allow_pickle=`` keyword that
``bp.load`` does not have."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import blockprop as bp


def text_file(path):
    path.write_text("hello, world\n")


def bare_pickle(path):
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))


def object_array_npz(path):
    with open(path, "wb") as f:
        np.savez(f, __header__=np.array([{"format": "blockprop"}], dtype=object))


@pytest.mark.parametrize("make", [text_file, bare_pickle, object_array_npz])
def test_not_a_model_message_names_what_blockprop_reads(tmp_path, make):
    path = tmp_path / f"{make.__name__}.npz"
    make(path)
    with pytest.raises(ValueError) as info:
        bp.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not a readable blockprop model file"), message
    assert "allow_pickle" not in message and "pickle.load" not in message, message
    assert "Sequential.save" in message and "never unpickles" in message, message
