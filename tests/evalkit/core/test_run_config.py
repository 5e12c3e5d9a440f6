"""RunConfig's seed: an int for a run, an ascending tuple for a pooled run (`evalkit pool`), stored as a JSON
list; ordinary run ids and config.json files are what they were before pooled runs existed."""

from __future__ import annotations

import json

import pytest

from evalkit.core.errors import EvalkitError
from evalkit.core.records import RunHeader
from evalkit.core.run_config import RunConfig
from evalkit.core.types import stable_hash
from tests.evalkit.core.test_records import CONFIG, HEADER_NEW

POOLED = {**CONFIG, "seed": [0, 1, 2], "n": 12}


def test_an_ordinary_run_keeps_its_int_seed_and_its_run_id():
    config = RunConfig.from_dict(CONFIG)
    assert (config.seed, config.seeds, config.is_pooled, config.generation_seed) == (0, (0,), False, 0)
    assert config.run_id == "8c3e7f695687b0a4" == stable_hash(CONFIG)
    assert config.to_dict() == CONFIG


def test_a_pooled_run_reads_a_list_as_a_tuple_and_writes_it_back_as_a_list():
    config = RunConfig.from_dict(POOLED)
    assert (config.seed, config.seeds, config.is_pooled) == ((0, 1, 2), (0, 1, 2), True)
    assert config.to_dict() == POOLED  # the list config.json holds, so dicts read from files compare equal
    # the run id hashes the stored form: the same id pool computed when it wrote the folder
    assert config.run_id == "031adf1ff280c44f" == stable_hash(POOLED)
    assert RunConfig.from_dict(config.to_dict()) == config


def test_a_pooled_config_json_round_trips_byte_for_byte():
    text = json.dumps({**HEADER_NEW, "run_id": "031adf1ff280c44f", "config": POOLED}, indent=2) + "\n"
    header = RunHeader.from_dict(json.loads(text))
    assert json.dumps(header.to_dict(), indent=2) + "\n" == text
    assert header.config.run_id == header.run_id


def test_a_pooled_run_cannot_generate():
    pooled = RunConfig.from_dict(POOLED)
    with pytest.raises(EvalkitError, match=r"pools seeds 0, 1, 2: it holds samples of other runs"):
        print(pooled.generation_seed)


@pytest.mark.parametrize(
    "seed",
    [
        True,  # a bool is not a seed (json true)
        1.5,
        "0",
        None,
        [],
        [3],  # one seed is an ordinary run: its run_id must not have two spellings
        [1, 0],  # not ascending: the same seeds would get another run_id
        [0, 0, 1],
        [0, "1"],
        [0, 1.0],
    ],
)
def test_a_seed_that_is_neither_is_refused_in_one_line(seed):
    with pytest.raises(EvalkitError, match=r"config seed .* is neither an integer nor a pooled run's") as err:
        RunConfig.from_dict({**CONFIG, "seed": seed})
    assert "\n" not in str(err.value)


def test_a_task_files_definition_enters_the_run_id_and_built_in_configs_stay_as_they_were():
    assert "task_definition" not in RunConfig.from_dict(CONFIG).to_dict()  # built-in: not even a null
    defined = RunConfig.from_dict({**CONFIG, "task_definition": "0123456789abcdef"})
    assert defined.to_dict() == {**CONFIG, "task_definition": "0123456789abcdef"}
    assert defined.run_id == stable_hash(defined.to_dict()) != RunConfig.from_dict(CONFIG).run_id
    assert RunConfig.from_dict(defined.to_dict()) == defined
