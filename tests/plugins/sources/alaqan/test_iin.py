"""IIN validation and masking, checked against check digits worked out by hand."""

import pytest

from elt_platform.sources.alaqan.iin import IIN_PROBLEMS, birth_date, check_digit, iin_problem, mask_iin

# Each case: IIN, the weighted sum(s) of its first 11 digits computed by hand, the check digit they give.
# Weights 1..11 first; when that sum mod 11 is 10, weights 3,4,5,6,7,8,9,10,11,1,2.
HAND_COMPUTED = [
    # 6*1+5*2+0*3+7*4+2*5+7*6+3*7+0*8+0*9+9*10+4*11 = 251 = 22*11 + 9
    pytest.param("650727300949", [251], 9, id="spec-650727300949"),
    # 9*1+1*2+0*3+5*4+0*5+5*6+3*7+5*8+0*9+3*10+1*11 = 163 = 14*11 + 9
    pytest.param("910505350319", [163], 9, id="spec-910505350319"),
    # 0*1+6*2+1*3+2*4+1*5+1*6+6*7+0*8+0*9+0*10+1*11 = 87 = 7*11 + 10 → second weights:
    # 0*3+6*4+1*5+2*6+1*7+1*8+6*9+0*10+0*11+0*1+1*2 = 112 = 10*11 + 2
    pytest.param("061211600012", [87, 112], 2, id="second-weighting-2006"),
]


@pytest.mark.parametrize(("iin", "sums", "expected"), HAND_COMPUTED)
def test_valid_iins_match_hand_arithmetic(iin: str, sums: list[int], expected: int) -> None:
    assert [s % 11 for s in sums[:-1]] == [10] * (len(sums) - 1)
    assert sums[-1] % 11 == expected == int(iin[-1])
    assert check_digit(iin[:11]) == expected
    assert iin_problem(iin) is None


def test_spec_counterexample_fails() -> None:
    # 1*1+2*2+3*3+4*4+5*5+6*6+7*7+8*8+9*9+0*10+1*11 = 296 = 26*11 + 10 → second weights:
    # 1*3+2*4+3*5+4*6+5*7+6*8+7*9+8*10+9*11+0*1+1*2 = 377 = 34*11 + 3, and the last digit is 2, not 3.
    assert check_digit("12345678901") == 3
    # Digit 7 is 7 (no such century), so the century check fires first.
    assert iin_problem("123456789012") == "bad_century_digit"


def test_both_weightings_ten_means_no_valid_check_digit() -> None:
    # 8*1+0+0+1*4+0+1*6+3*7+0+0+7*10+2*11 = 131 = 11*11 + 10
    # 8*3+0+0+1*6+0+1*8+3*9+0+0+7*1+2*2 = 76 = 6*11 + 10
    assert check_digit("80010130072") is None
    assert all(iin_problem(f"80010130072{last}") == "bad_check_digit" for last in "0123456789")


@pytest.mark.parametrize(
    ("iin", "problem"),
    [
        ("65072730094", "not_12_digits"),
        ("6507273009490", "not_12_digits"),
        ("65072730094a", "not_12_digits"),
        (" 65072730094", "not_12_digits"),
        ("６５０７２７３００９４９", "not_12_digits"),  # full-width digits are not ASCII digits
        ("", "not_12_digits"),
        (None, "not_12_digits"),
        (650727300949, "not_12_digits"),
        ("650727000949", "bad_century_digit"),  # digit 7 = 0: rejected by decision (see iin.py)
        ("650727700949", "bad_century_digit"),
        ("651327300949", "bad_birth_date"),  # month 13
        ("650230300949", "bad_birth_date"),  # 30 February
        ("010229500000", "bad_birth_date"),  # 2001 is not a leap year
        ("650727300948", "bad_check_digit"),
        ("650727300940", "bad_check_digit"),
    ],
)
def test_iin_problem_table(iin: object, problem: str) -> None:
    assert problem in IIN_PROBLEMS
    assert iin_problem(iin) == problem


@pytest.mark.parametrize(
    ("iin", "born"),
    [("650727300949", (1965, 7, 27)), ("910505350319", (1991, 5, 5)), ("061211600012", (2006, 12, 11))],
)
def test_birth_date(iin: str, born: tuple[int, int, int]) -> None:
    assert birth_date(iin).timetuple()[:3] == born


@pytest.mark.parametrize("bad", ["1234567890", "123456789012", "1234567890a"])
def test_check_digit_rejects_non_eleven_digit_input(bad: str) -> None:
    with pytest.raises(ValueError, match="11 ASCII digits"):
        check_digit(bad)


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("650727300949", "6507******49"),
        ("65072730094", "6507*****94"),
        ("12345678", "1234**78"),
        ("1234567", "*******"),
        ("", ""),
        (650727300949, "6507******49"),
    ],
)
def test_mask_iin(value: object, masked: str) -> None:
    assert mask_iin(value) == masked
