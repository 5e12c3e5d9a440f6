"""GPQA Diamond through the runner (needs the data: EVALKIT_DATA_DIR): one request per sample, each sample's
own gold letter and option permutation stored, and no question text written to config.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evalkit.core.types import Completion
from evalkit.planning import RunOptions, plan_tasks
from evalkit.runner import run
from tasks import get_task

pytestmark = pytest.mark.data

N, LIMIT, SEED = 3, 4, 7


class LetterBackend:
    """Answers the gold letter of even samples and a wrong letter for odd ones (test only)."""

    name = "letter-test"

    def __init__(self, gold_by_prompt: dict[str, str]) -> None:
        self.gold_by_prompt = gold_by_prompt
        self.request_ids: list[str] = []

    def generate(self, requests):
        for request in requests:
            self.request_ids.append(request.request_id)
            gold = self.gold_by_prompt[request.messages[-1]["content"]]
            for index in request.sample_indices:
                letter = gold if index % 2 == 0 else "ABCD"[("ABCD".index(gold) + 1) % 4]
                yield Completion(request.request_id, index, f"\\boxed{{{letter}}}", 50, 5, "stop")

    def model_info(self):
        return {"backend": self.name}


@pytest.fixture(scope="module")
def data_dir() -> str:
    folder = os.environ.get("EVALKIT_DATA_DIR")
    if not folder or not (Path(folder) / "gpqa" / "dataset.zip").is_file():
        pytest.skip("GPQA data not available: set EVALKIT_DATA_DIR to the data folder")
    return folder


def test_gpqa_samples_carry_their_own_permutation_and_gold(tmp_path, data_dir):
    task = get_task("gpqa_diamond")
    problems = task.load(data_dir)[:LIMIT]
    views = {(p.id, i): task.sample_view(p, i, SEED) for p in problems for i in range(N)}
    backend = LetterBackend({v.messages[-1]["content"]: v.gold for v in views.values()})
    options = RunOptions(
        backend="replay", model="letter-test", from_file=__file__, n=N, limit=LIMIT,
        seed=SEED, data_dir=data_dir, out=str(tmp_path), workers=1,
    )  # fmt: skip
    [(plan, results)] = run(plan_tasks(options, [task]), backend, workers=1)

    assert backend.request_ids == [f"{p.id}#{i}" for p in problems for i in range(N)]
    for record in plan.folder.completions():
        view = views[record.key]
        assert record.gold == view.gold and record.permutation == view.permutation
    assert results.metrics["pass_at_1"] == pytest.approx(100 * 2 / 3)  # samples 0 and 2 of 0..2
    # maj@k groups wrong GPQA votes by option, so the scores must carry each sample's permutation.
    for score in plan.folder.scores():
        view = views[score.key]
        assert score.permutation == view.permutation
    config_text = (plan.folder.path / "config.json").read_text()
    assert problems[0].metadata["question"][:40] not in config_text
    assert set(json.loads(config_text)["problems"][0]) == {"id", "domain", "subdomain"}
