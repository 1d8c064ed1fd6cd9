from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import decode, encode, encode_decoded, from_hex, signing_bytes
from ledger.errors import EncodingError

# Golden vectors: the expected bytes are written out by hand from the rules
# (sorted keys, no whitespace, UTF-8, integers only), not captured from the encoder.
GOLDEN = [
    ({}, b"{}"),
    ([], b"[]"),
    ({"b": 1, "a": 2}, b'{"a":2,"b":1}'),
    ({"z": [3, 2, 1], "a": {"y": None, "x": True}}, b'{"a":{"x":true,"y":null},"z":[3,2,1]}'),
    ({"amount": -1200000, "wh": 0}, b'{"amount":-1200000,"wh":0}'),
    ({"big": 10**20}, b'{"big":100000000000000000000}'),
    ({"s": 'quote" back\\ nl\n'}, b'{"s":"quote\\" back\\\\ nl\\n"}'),
    ({"name": "Zoë"}, b'{"name":"Zo\xc3\xab"}'),
    ({"B": 1, "a": 2, "_": 3}, b'{"B":1,"_":3,"a":2}'),  # code-point order: B < _ < a
    ((1, "x"), b'[1,"x"]'),
]


@pytest.mark.parametrize(("value", "expected"), GOLDEN)
def test_golden_vectors(value: object, expected: bytes) -> None:
    assert encode(value) == expected


@pytest.mark.parametrize(("value", "expected"), GOLDEN)
def test_decode_inverts_golden_vectors(value: object, expected: bytes) -> None:
    assert encode(decode(expected)) == expected


def test_signing_bytes_carry_domain_and_chain() -> None:
    assert signing_bytes("v2g/tx/v1", "chain-a", {"x": 1}) == (
        b'{"chain_id":"chain-a","domain":"v2g/tx/v1","payload":{"x":1}}'
    )
    assert signing_bytes("d", "chain-a", 1) != signing_bytes("d", "chain-b", 1)
    assert signing_bytes("d1", "c", 1) != signing_bytes("d2", "c", 1)


@pytest.mark.parametrize("value", [1.5, {"a": 0.0}, [1, 2.0], {"a": float("nan")}])
def test_floats_are_refused(value: object) -> None:
    with pytest.raises(EncodingError, match="float"):
        encode(value)


def test_non_string_keys_and_unknown_types_are_refused() -> None:
    with pytest.raises(EncodingError):
        encode({1: "a"})
    with pytest.raises(EncodingError):
        encode({"a": b"bytes"})


@pytest.mark.parametrize(
    "data",
    [
        b'{"b":1,"a":2}',  # unsorted
        b'{"a": 2}',  # whitespace
        b'{"a":2.5}',  # float
        b'{"a":1e3}',  # exponent is a float
        b'{"a":NaN}',
        b'{"a":"\\u00e9"}',  # escaped non-ASCII: canonical form is raw UTF-8
        b'{"a":1',  # truncated
        b"\xff",
    ],
)
def test_decode_refuses_non_canonical(data: bytes) -> None:
    with pytest.raises(EncodingError):
        decode(data)


def test_from_hex_checks_form_and_length() -> None:
    assert from_hex("00ff", length=2) == b"\x00\xff"
    for bad in ("00FF", "0g", "0", 5, "00 ff"):
        with pytest.raises(EncodingError):
            from_hex(bad)
    with pytest.raises(EncodingError):
        from_hex("00", length=2)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_round_trip(value: object) -> None:
    data = encode(value)
    assert decode(data) == value
    assert encode(decode(data)) == data


# The encoding the rules define, written with the standard library alone: the fast paths
# (orjson) must give the same bytes, and accept and refuse the same inputs.
def stdlib_encode(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def stdlib_decode(data: bytes) -> object:
    def no_float(text: str) -> object:
        raise ValueError(text)

    try:
        value = json.loads(data.decode("utf-8"), parse_float=no_float, parse_constant=no_float)
        canonical = stdlib_encode(value) == data
    except (ValueError, RecursionError, UnicodeError):
        return REFUSED
    return value if canonical else REFUSED


REFUSED = object()

wide_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.text(max_size=8),  # any code point but surrogates, control characters included
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
MUTATIONS = [b" ", b"0", b"1", b"-", b".", b"e", b'"', b"\\", b",", b"}", b"\xff", b"\xc3"]


@given(wide_values)
def test_encoding_is_the_standard_librarys(value: object) -> None:
    assert encode_decoded(value) == stdlib_encode(value)
    assert encode(value) == stdlib_encode(value)


@given(wide_values, st.data())
def test_decode_accepts_and_refuses_what_the_rules_do(value: object, data: st.DataObject) -> None:
    raw = encode(value)
    at = data.draw(st.integers(min_value=0, max_value=len(raw)))
    byte = data.draw(st.sampled_from(MUTATIONS))
    how = data.draw(st.sampled_from(["insert", "replace", "delete", "none"]))
    if how == "insert":
        raw = raw[:at] + byte + raw[at:]
    elif how == "replace":
        raw = raw[:at] + byte + raw[at + 1 :]
    elif how == "delete":
        raw = raw[:at] + raw[at + 1 :]
    expected = stdlib_decode(raw)
    if expected is REFUSED:
        with pytest.raises(EncodingError):
            decode(raw)
    else:
        assert decode(raw) == expected


@pytest.mark.parametrize(
    "data",
    [b"1.5", b"[0.5]", b'{"a":[1,2.0]}', b"1E3", b"-0", b"18446744073709551616.0", b'"\\ud800"'],
)
def test_decode_refuses_floats_and_forms_with_no_canonical_encoding(data: bytes) -> None:
    with pytest.raises(EncodingError):
        decode(data)


def test_decode_takes_integers_past_64_bits_and_times_with_fractions() -> None:
    assert decode(b'{"a":-100000000000000000000}') == {"a": -(10**20)}
    assert decode(b'{"t":"12:00:00.5","u":[1,"2.5e3"]}') == {"t": "12:00:00.5", "u": [1, "2.5e3"]}
