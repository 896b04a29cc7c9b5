"""Profiles and run ids, in-process: merging, extends chains, overrides, and id determinism."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from molexp.cli import (
    ProfileError,
    ProfileUsageError,
    deep_merge,
    derive_run_id,
    load_profile,
    parse_config,
    parse_override,
)
from molexp.cli._profiles import resolve

CONFIG = """\
version: 1
defaults:
  model: {width: 64, depth: 2}
  data: {path: /data/qm9, split: [0.8, 0.2]}
profiles:
  base:
    model: {depth: 4}
  wide:
    extends: base
    model: {width: 256}
  gpu:
    device: cuda
  both:
    extends: [wide, gpu]
    data: {split: [0.9, 0.1]}
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "molcfg.yaml"
    path.write_text(CONFIG)
    return path


def test_defaults_extends_and_deep_merge(config_file):
    assert load_profile(config=config_file).config == {
        "model": {"width": 64, "depth": 2},
        "data": {"path": "/data/qm9", "split": [0.8, 0.2]},
    }
    wide = load_profile("wide", config=config_file)
    assert wide.name == "wide"
    assert wide.config["model"] == {"width": 256, "depth": 4}
    both = load_profile("both", config=config_file)
    assert both.config == {
        "model": {"width": 256, "depth": 4},
        "data": {"path": "/data/qm9", "split": [0.9, 0.1]},  # lists replace, never merge
        "device": "cuda",
    }


def test_overrides_are_typed_yaml_scalars_applied_last(config_file):
    profile = load_profile(
        "wide",
        config=config_file,
        overrides=[
            "model.width=1e3",
            "model.act=relu",
            "train.lr=1e-4",
            "train.amp=true",
            "train.note=",
            "data.split=[0.5, 0.5]",
            "model.depth=8",
        ],
    )
    assert profile.config["model"] == {"width": 1000.0, "depth": 8, "act": "relu"}
    assert profile.config["train"] == {"lr": 0.0001, "amp": True, "note": None}
    assert profile.config["data"]["split"] == [0.5, 0.5]
    assert parse_override("a.b.c='007'") == (("a", "b", "c"), "007")
    assert parse_override("when=2024-01-02") == (("when",), "2024-01-02")  # dates stay strings


def test_config_hash_ignores_key_order(tmp_path):
    one = tmp_path / "one.yaml"
    one.write_text("defaults: {a: 1, b: {c: 2, d: 3}}\n")
    two = tmp_path / "two.yaml"
    two.write_text("defaults: {b: {d: 3, c: 2}, a: 1}\n")
    assert load_profile(config=one).config_hash == load_profile(config=two).config_hash
    assert (
        load_profile(config=one).config_hash
        != load_profile(config=one, overrides=["a=2"]).config_hash
    )


def test_the_config_is_found_next_to_the_script_then_in_the_cwd(tmp_path, config_file):
    other = tmp_path / "other"
    other.mkdir()
    assert load_profile("gpu", search=[other, tmp_path]).source == config_file
    assert load_profile(search=[other]).config == {}
    with pytest.raises(ProfileUsageError, match=r"needs a molcfg\.yaml"):
        load_profile("gpu", search=[other])
    assert load_profile(search=[other], overrides=["x=1"]).config == {"x": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("profiles:\n  a: {extends: a}\n", "cycle: a -> a"),
        (
            "profiles:\n  a: {extends: [b]}\n  b: {extends: [c]}\n  c: {extends: [a]}\n",
            "a -> b -> c -> a",
        ),
        ("profiles:\n  a: {extends: 3}\n", "extends must be a profile name"),
        ("profiles: [a, b]\n", "profiles must map"),
        ("defaults: 3\n", "defaults must be a mapping"),
        ("defaults: {1: x}\n", "key 1"),
        ("version: true\n", "version True"),
        ("a: [\n", "line 2"),
        ("profiles:\n  a: {extends: zz}\n", "extends unknown profile 'zz'"),
        ("version: 2\n", "version 2 is not supported"),
        ("- a\n- b\n", "must be a mapping"),
        ("colour: blue\n", "unknown top-level key 'colour'"),
        ("defaults: {when: !!set {a, b}}\n", "defaults.when is a set"),
    ],
)
def test_bad_files(text, message):
    with pytest.raises(ProfileError, match=re.escape(message)):
        resolve(parse_config(text, Path("molcfg.yaml")), "a")


def test_bad_overrides():
    for text in ("novalue", "=1", ".a=1", "a.=1", "a..b=1", " =1"):
        with pytest.raises(ProfileUsageError, match="KEY=VALUE"):
            parse_override(text)
    with pytest.raises(ProfileUsageError, match="not valid YAML"):
        parse_override("a={b: [")


def test_deep_merge_does_not_alias_its_inputs():
    base = {"a": {"b": [1]}}
    merged = deep_merge(base, {"a": {"c": 2}})
    merged["a"]["b"].append(2)
    assert base == {"a": {"b": [1]}}


def test_run_ids_are_deterministic_and_depend_on_what_makes_the_run():
    base = {
        "project": "p",
        "experiment": "e",
        "parameters": {"lr": 0.1, "seed": 7, "replica": 0, "opt": {"b": 1, "a": 2}},
        "replica": 0,
        "profile_name": "smoke",
        "config_hash": "abc",
    }
    run_id = derive_run_id(**base)
    assert len(run_id) == 12 and int(run_id, 16) >= 0
    reordered = dict(base, parameters={"opt": {"a": 2, "b": 1}, "replica": 0, "seed": 7, "lr": 0.1})
    assert derive_run_id(**reordered) == run_id
    for change in (
        {"profile_name": None},
        {"config_hash": "abd"},
        {"replica": 1},
        {"experiment": "f"},
        {"parameters": dict(base["parameters"], lr=0.2)},
    ):
        assert derive_run_id(**{**base, **change}) != run_id
