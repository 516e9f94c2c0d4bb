"""The five API endpoints under the structure-aware fuzzer, in process: never a 500.

The short form of ``benchmarks/fuzz_api.py`` (whose long runs go over
sockets to a real ``ichnaea web``): the same seeded bodies, sent through
``create_app`` on MariaDB and the Redis server after the fuzzer's pool of
networks (LTE and NR cells of one site among them) has been learned, so
locate bodies reach the station queries. A failure lists each 500 with
what the app raised; ``fuzz_api.py --seed 8 --only <index>`` prints the
body again.
"""

from __future__ import annotations

import pytest

from benchmarks.fuzz_api import make_pool, run_in_process, teach_reports
from tests.fixtures_pipeline import Pipeline

SEED = 8
BODIES = 3000
KEY = "fuzz"


@pytest.mark.mysql
@pytest.mark.parametrize("backend", ["real"], indirect=True)
def test_fuzzed_bodies_never_answer_500(pipeline: Pipeline) -> None:
    pool = make_pool()
    pipeline.api_key(KEY)
    pipeline.submit(teach_reports(pool), api_key=KEY)
    pipeline.run()
    assert pipeline.rows("cell_nr"), "the pool was not learned"

    tally = run_in_process(pipeline.client, SEED, 0, BODIES, pool, key=KEY, quiet=True)

    assert tally.total == BODIES
    failures = [
        f"case {case.index} {case.method} {case.endpoint} -> {outcome}: {raised}"
        for case, outcome, raised in tally.failures
    ]
    assert not failures, tally.summary() + "\n" + "\n".join(failures[:40])
