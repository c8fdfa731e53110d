"""Parsing and formatting of sizes and durations (hand-computed cases)."""

import math

import pytest

from llmsizing.errors import ScenarioError
from llmsizing.units import GB, GiB, fmt_bytes, fmt_gb, fmt_gib, fmt_hours, parse_data_size, parse_duration_s, parse_memory_bytes

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text,amount,unit", [
    ("1K", 1e3, "bytes"),            # a bare size is bytes of raw text, as in the customer's request
    ("1G", 1e9, "bytes"),
    ("1GB", 1e9, "bytes"),
    ("100 GB", 100e9, "bytes"),
    ("1TB", 1e12, "bytes"),
    ("1GiB", 2**30, "bytes"),
    ("15.6T tokens", 15.6e12, "tokens"),
    ("1B tokens", 1e9, "tokens"),    # B = billion for counts
    ("1K samples", 1e3, "samples"),
    ("1B", 1, "bytes"),              # ... but one byte for a bare size
    (2048, 2048, "bytes"),
])
def test_parse_data_size(text, amount, unit):
    d = parse_data_size(text)
    assert d.unit == unit
    assert math.isclose(d.amount, amount)


@pytest.mark.parametrize("text", ["1X", "-5GB", "0", "0GB", "abc", "", "1e400", True, "1 parsecs"])
def test_parse_data_size_rejects(text):
    with pytest.raises(ScenarioError, match="accepted"):
        parse_data_size(text)


@pytest.mark.parametrize("text,seconds", [("24h", 86400), ("1d", 86400), ("90m", 5400), ("2", 7200), (1.5, 5400)])
def test_parse_duration(text, seconds):
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["0h", "-1d", "soon", "24 lightyears"])
def test_parse_duration_rejects(text):
    with pytest.raises(ScenarioError, match="accepted"):
        parse_duration_s(text)


def test_memory_and_formatting_say_their_unit():
    assert parse_memory_bytes("24GiB") == 24 * GiB
    assert parse_memory_bytes("80 GB") == 80 * GB
    with pytest.raises(ScenarioError):
        parse_memory_bytes("24G")
    assert fmt_gib(70 * GiB) == "70.0 GiB"
    assert fmt_gb(1.5e12) == "1,500.0 GB"
    assert fmt_bytes(3 * 2**40) == "3.00 TiB"
    assert fmt_hours(0.5) == "30.0 min" and fmt_hours(72) == "3.0 days"
