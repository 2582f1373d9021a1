from __future__ import annotations

from pathlib import Path

from client.api_client import Chunk, ResumeState, Summary, chunks
from client.transformer import BadRow, Record


def rows(*kinds: str) -> list[Record | BadRow]:
    return [
        Record(line, {"n": line}) if kind == "r" else BadRow(line, "bad") for line, kind in enumerate(kinds, start=2)
    ]


def test_chunks_cover_every_row_once_with_bad_rows_riding_along() -> None:
    batches = list(chunks("products", rows("r", "b", "r", "r", "b", "b"), size=2))
    assert [(c.start, c.end, len(c.records), len(c.bad_rows)) for c in batches] == [(0, 3, 2, 1), (3, 6, 1, 2)]


def test_chunks_after_a_resume_start_where_the_prefix_ended() -> None:
    batches = list(chunks("products", rows("r", "r", "r", "r", "r"), size=2, skip=2))
    assert [(c.start, c.end) for c in batches] == [(2, 4), (4, 5)]
    assert [r.line for r in batches[0].records] == [4, 5]


def answered(state: ResumeState, chunk: Chunk, undelivered: int = 0) -> None:
    accepted = 0 if undelivered else len(chunk.records)
    state.record(chunk, chunk.outcome(accepted, [], undelivered))


def make_state(tmp_path: Path) -> ResumeState:
    products = tmp_path / "p.csv"
    if not products.exists():
        products.write_text("x")
    return ResumeState(tmp_path / "state.json", {"products": products}, batch_size=2)


def test_only_the_answered_prefix_is_saved_and_a_new_state_resumes_it(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    first, second, third = chunks("products", rows("r", "r", "r", "b", "r", "r"), size=2)
    answered(state, third)
    answered(state, first)
    assert state.done == {"products": 2}  # the second batch is still in flight
    answered(state, second, undelivered=2)
    assert state.done == {"products": 2}  # undelivered: the next run sends it again

    resumed = make_state(tmp_path)
    assert resumed.resumed and resumed.run_id == state.run_id and resumed.done == {"products": 2}
    assert resumed.summary == Summary(sent=2, accepted=2)
    assert resumed.idempotency_key(third) == state.idempotency_key(third)


def test_a_changed_input_file_starts_a_new_run(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    answered(state, next(chunks("products", rows("r", "r"), size=2)))
    (tmp_path / "p.csv").write_text("changed")
    assert not make_state(tmp_path).resumed


def test_a_finished_run_forgets_its_state(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    answered(state, next(chunks("products", rows("r", "r"), size=2)))
    state.finish(Summary(sent=2, accepted=2))
    assert not (tmp_path / "state.json").exists()


def test_a_day_of_price_updates_is_sent_without_the_categories(tmp_path: Path, monkeypatch) -> None:
    """`make run` sends each day file alone (stack/pipeline.py): only /products/batch is posted."""
    from client import api_client
    from tests.conftest import SAMPLE_DATASET

    posted: list[tuple[str, int]] = []

    def post_batch(self, path: str, chunk: Chunk, idempotency_key: str) -> Summary:
        posted.append((path, len(chunk.records)))
        return chunk.outcome(len(chunk.records), [])

    monkeypatch.setattr(api_client.IngestClient, "post_batch", post_batch)
    day = SAMPLE_DATASET / "updates" / "day_01.csv"
    summary = api_client.run(day, None, "http://127.0.0.1:9", show_progress=False, state_path=tmp_path / "s.json")
    rows_in_day = len(day.read_text().splitlines()) - 1
    assert summary == Summary(sent=rows_in_day, accepted=rows_in_day)
    assert {path for path, _ in posted} == {"/products/batch"} and sum(n for _, n in posted) == rows_in_day
