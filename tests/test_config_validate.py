"""Config-file values are type-checked with the file and the setting named (one line, exit 2)."""

import dataclasses
import json

import pytest
from hypothesis import given, settings, strategies as st

from benchmark.config import RunConfig, make_config
from benchmark.errors import UsageError
from conftest import run_cli


@pytest.mark.parametrize("text, message", [
    ('limit = "abc"', "setting 'limit' must be an integer or nothing, got 'abc'"),
    ("limit = true", "setting 'limit' must be an integer or nothing, got True"),
    ('report = "no"', "setting 'report' must be true or false, got 'no'"),
    ("seed = 1.5", "setting 'seed' must be an integer, got 1.5"),
    ("variants = [1, 2]", "setting 'variants' must be a list of a string, got [1, 2]"),
    ("dataset_options = 3", "setting 'dataset_options' must be a table, got 3"),
    ("colour = 1", "unknown setting(s) colour"),
])
def test_wrong_types_name_file_and_setting(tmp_path, text, message):
    p = tmp_path / "run.toml"
    p.write_text(text + "\n")
    with pytest.raises(UsageError) as e:
        make_config({}, str(p))
    assert str(e.value) == f"config file {p}: {message}"


def test_right_types_pass_and_lists_become_tuples(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text('limit = 5\nreport = false\nvariants = ["float"]\nweight_bits = [6, 4]\n')
    cfg = make_config({}, str(p))
    assert (cfg.limit, cfg.report, cfg.variants, cfg.weight_bits) == (5, False, ("float",), (6, 4))


def test_negative_seed_is_named():
    with pytest.raises(UsageError, match="--seed must be >= 0, got -1"):
        make_config({"seed": -1})


def test_cli_exit_code_and_one_line(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text("limit = true\n")
    r = run_cli("benchmark.run", "--config", p, "--out", tmp_path / "out")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "setting 'limit'" in r.stderr
    assert not (tmp_path / "out").exists()


_values = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.floats(allow_nan=False),
                    st.text(max_size=6), st.lists(st.integers(-1, 9), max_size=3),
                    st.lists(st.text(max_size=4), max_size=2), st.dictionaries(
                        st.text(max_size=3), st.integers(), max_size=2))
_fields = [f.name for f in dataclasses.fields(RunConfig)]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(_fields), _values, max_size=4))
def test_any_config_is_a_config_or_one_usage_error(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("cfg") / "run.json"
    p.write_text(json.dumps(data))
    try:
        cfg = make_config({}, str(p))
    except UsageError as e:
        assert "\n" not in str(e)
        return
    for name, value in data.items():  # what was accepted is what the file said
        got = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (list, str)):
            assert got == value or (isinstance(got, tuple) and list(got) == value), name
