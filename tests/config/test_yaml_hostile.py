"""Hostile YAML: deep nesting, alias bombs and huge numbers become positioned errors, quickly, and
every file is parsed once. The time limits are guards against a hang (the pure-Python parser took
minutes on the 100 KB file), not benchmarks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from airflow_dataops.config import yaml_loader
from airflow_dataops.config.resolve import validate_text
from airflow_dataops.config.yaml_loader import load_yaml
from tests.dag_builder.conftest import REPO

DEPTH = "pipeline.tags: the file is nested deeper than 50 levels"


def brackets(n: int, open_: str = "[", close: str = "]") -> str:
    return "pipeline:\n  name: deep\n  tags: " + open_ * n + "x" + close * n + "\n"


HOSTILE = {
    "brackets_5kb": brackets(2500),
    "brackets_100kb": brackets(50_000),
    "braces_100kb": brackets(50_000, "{", "}"),
    "mixed_100kb": brackets(25_000, "[{", "}]"),
    "unclosed_1mb": "pipeline:\n  name: deep\n  tags: " + "[" * 1_000_000,
}

PROBE = r"""
import json, sys, time
from airflow_dataops.config.yaml_loader import load_yaml
out = {}
for name, text in json.loads(sys.stdin.read()).items():
    start = time.perf_counter()
    loaded = load_yaml(text.encode(), name + ".yaml")
    out[name] = {"issues": [str(i) for i in loaded.issues], "data": loaded.data, "seconds": time.perf_counter() - start}
print(json.dumps(out))
"""


def test_deeply_nested_files_are_refused_with_the_key_and_position_in_a_bounded_time():
    # A subprocess, so that a regression hangs the probe (killed at the limit), not the test run.
    out = subprocess.run([sys.executable, "-c", PROBE], input=json.dumps(HOSTILE), capture_output=True, text=True,
                         timeout=20, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout)
    for name in HOSTILE:
        got = results[name]
        assert got["data"] is None, name
        # the 50th opener, at path length 51 (the 1st is `tags`'s value, at 2)
        assert len(got["issues"]) == 1 and got["issues"][0].startswith(f"{name}.yaml:3:58: {DEPTH}"), got


def test_the_depth_is_counted_across_block_levels_and_flow_levels():
    block = "".join(" " * (2 * i) + f"k{i}:\n" for i in range(30))
    text = block + " " * 60 + "v: " + "[" * 30 + "]" * 30 + "\n"
    issues = load_yaml(text, "mixed.yaml").issues
    # k0..k29 and v are 31 levels: the 21st bracket opens the node at path length 51
    assert [str(i).split(": ")[0] for i in issues] == [f"mixed.yaml:31:{64 + 20}"]
    assert issues[0].path == ("k0", "k1") and "nested deeper than 50 levels" in issues[0].message


def test_compact_block_nesting_is_refused_too():
    text = "pipeline:\n  name: deep\n  tags:\n    " + "- " * 100_000 + "x\n"
    issues = load_yaml(text, "seq.yaml").issues
    assert len(issues) == 1 and issues[0].path == ("pipeline", "tags") and "nested deeper" in issues[0].message
    assert (issues[0].line, issues[0].column) == (4, 5 + 2 * 49)  # the 50th sequence: path length 51


@pytest.mark.parametrize("where", ["quoted", "single", "comment", "block", "folded", "plain"])
def test_brackets_that_are_text_are_not_nesting(where):
    many = "[" * 200
    body = {
        "quoted": f'  description: "{many}"\n',
        "single": f"  description: '{many}'\n",
        "comment": f"  # {many}\n",
        "block": f"  description: |\n    {many}\n    {'{' * 200}\n",
        "folded": f"  description: >-\n    {many}\n",
        "plain": f"  description: see {many}\n",
    }[where]
    loaded = load_yaml(f"pipeline:\n  name: p\n{body}  tags: [a]\n", "text.yaml")
    assert loaded.issues == [] and loaded.data["pipeline"]["tags"] == ["a"]
    assert loaded.data["pipeline"].get("description", "").strip("\n") in ("", many, f"see {many}", f"{many}\n{'{' * 200}")


def test_nesting_up_to_the_limit_is_fine():
    loaded = load_yaml(brackets(48), "ok.yaml")  # `x` at path length 50
    assert loaded.issues == [], loaded.issues
    assert [str(i).split(": ")[0] for i in load_yaml(brackets(49), "deep.yaml").issues] == ["deep.yaml:3:58"]


def test_an_alias_bomb_is_refused_without_expanding_it():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    loaded = load_yaml("\n".join(lines) + "\npipeline:\n  name: p\n  tags: *a9\n", "bomb.yaml")
    aliases = [i for i in loaded.issues if "aliases" in i.message]
    assert len(aliases) == 9 * 9 + 1
    assert str(aliases[-1]).startswith("bomb.yaml:13:9: pipeline.tags: YAML aliases (*name) are not allowed")
    assert loaded.data["pipeline"]["tags"] is None


def test_each_file_is_parsed_once(yaml_parses):
    made = yaml_parses
    load_yaml("a: &a [1]\nb: *a\npipeline:\n  name: p\n", "alias.yaml")
    assert len(made) == 1
    made.clear()
    load_yaml(brackets(50_000), "deep.yaml")
    assert len(made) == 1  # only the part up to the first node too deep


def test_the_c_parser_is_used_and_keeps_positions():
    import yaml

    if not yaml.__with_libyaml__:
        pytest.skip("PyYAML without libyaml")
    assert issubclass(yaml_loader._Loader, yaml.cyaml.CParser)
    loaded = load_yaml("pipeline:\n  name: caf\u00e9\n  tags: [a, {b: c}]\n", "p.yaml")
    assert loaded.positions[("pipeline", "tags")] == (3, 3)
    assert loaded.positions[("pipeline", "tags", 1)] == (3, 13)
    assert loaded.positions[("pipeline", "tags", 1, "b")] == (3, 14)


def test_a_control_character_after_non_ascii_text_is_placed_by_character():
    loaded = load_yaml("pipeline:\n  name: caf\u00e9\u00e9\x07\n", "ctl.yaml")
    assert [str(i) for i in loaded.issues] == [
        "ctl.yaml:2:14: (top level): invalid YAML: the control character U+0007 is not allowed in YAML text: remove it"]


# -- integers over Python's 4,300-digit limit -------------------------------------------------

HUGE = "9" * 5000


def test_an_integer_too_long_is_a_positioned_error_not_an_exception():
    loaded = load_yaml(f"pipeline:\n  name: p\n  retries: {HUGE}\n", "big.yaml")
    assert [str(i).split(" (")[0] for i in loaded.issues] == ["big.yaml:3:12: pipeline.retries: integer too long"]
    assert "5,000 digits" in loaded.issues[0].message
    assert "quote it" in loaded.issues[0].message and HUGE not in str(loaded.issues[0])


def test_validate_reports_a_too_long_integer_once():
    issues = validate_text(f"pipeline:\n  name: p\n  retries: -{HUGE}\n", "big.yaml")
    assert [(i.line, i.column, i.path) for i in issues] == [(3, 12, ("pipeline", "retries"))]
    assert "integer too long" in issues[0].message


@pytest.mark.parametrize("duration", [f"{HUGE} hours", "99999999999999 days"])
def test_a_duration_too_long_for_a_timedelta_is_a_positioned_error(duration):
    issues = validate_text(f'pipeline:\n  name: p\n  sla:\n    freshness: "{duration}"\n', "p.yaml")
    assert [(i.line, i.column) for i in issues] == [(4, 5)]
    assert "is longer than any duration can be" in issues[0].message and HUGE not in str(issues[0])
