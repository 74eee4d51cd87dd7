"""`--dynamic NAME:AXIS[=label]` and `dynamic=` parsing."""

from __future__ import annotations

import pytest

from irbridge.errors import InputError
from irbridge.importers.dynamic_spec import normalize, parse_dynamic


def test_specs_parse_with_default_labels():
    assert parse_dynamic(["input_ids:0", "input_ids:1=sequence", "mask:1", "x:0:0=b"]) == {
        "input_ids": {0: "batch", 1: "sequence"},
        "mask": {1: "mask_dim1"},
        "x:0": {0: "b"},  # a TF-style name holding ':'
    }
    assert parse_dynamic([]) == {}


@pytest.mark.parametrize("spec", ["x", "x:", ":1", "x:a", "x:-1", "x:1=", "x=1"])
def test_bad_specs_name_the_spec_and_the_form(spec):
    with pytest.raises(InputError, match=r"bad --dynamic spec .* expected --dynamic NAME:AXIS\[=label\]") as err:
        parse_dynamic([spec])
    assert repr(spec) in str(err.value) and "\n" not in str(err.value)


def test_one_axis_declared_twice_is_an_error():
    with pytest.raises(InputError, match="declared twice"):
        parse_dynamic(["x:1=a", "x:1=b"])
    assert parse_dynamic(["x:1=a", "x:1=a"]) == {"x": {1: "a"}}


def test_the_api_forms_normalize():
    assert normalize(None) == {}
    assert normalize({"x": {0: "batch", 2: None}}) == {"x": {0: "batch", 2: "x_dim2"}}
    assert normalize({"x": [0, 1]}) == {"x": {0: "batch", 1: "x_dim1"}}
    assert normalize(["x:1=seq"]) == {"x": {1: "seq"}}
    with pytest.raises(InputError, match="dynamic= takes"):
        normalize(3)
