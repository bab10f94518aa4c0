"""The argparse types of hpo's flags check their ranges with runner.schema's one check."""

from __future__ import annotations

import pytest

from hpo.cli_types import finite_positive_float, non_negative_int, positive_int


def test_flag_values_in_range_come_back_as_their_kind():
    assert positive_int("3") == 3 and non_negative_int("0") == 0
    assert finite_positive_float("1e-3") == 0.001


@pytest.mark.parametrize(
    ("flag_type", "text"),
    [
        (positive_int, "0"),
        (positive_int, "1.5"),
        (non_negative_int, "-1"),
        (finite_positive_float, "0"),
        (finite_positive_float, "nan"),
        (finite_positive_float, "inf"),
    ],
)
def test_flag_values_out_of_range_are_refused_as_argparse_expects(flag_type, text):
    with pytest.raises(ValueError):  # argparse turns it into "invalid <type> value: 'text'"
        flag_type(text)
