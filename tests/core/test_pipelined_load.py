"""A large run's parts are taken and staged while its script still writes the next ones, and
that changes none of the guarantees: the table and the state change only when the run commits,
and nothing the script plants in its spool is read outside it."""

import pytest

from core.feeds import FeedSpec, create_feed, edit_feed
from core.runs import create_run, read_log
from core.preview import PreviewRequest, preview_script
from core.bootstrap import execute_run
from common.settings import get_settings
from core.state import current_state
from tests.helpers import table_exists, warehouse_rows

# The script writes one part and a record more, so that part 0 is complete, then waits until
# the parent has taken part 0 out of its spool: with no pipelining it would wait in vain.
WAITS_FOR_PART_0 = """
import os, time
from lib import outputStream, metadata, _runtime
per_part = _runtime.RECORDS_PER_PART
for i in range(per_part + 1):
    outputStream.write({"id": i, "name": f"n{i}"})
part_0 = os.path.join("out", "spool", "part-00000.jsonl")
deadline = time.monotonic() + 20
while os.path.exists(part_0) and time.monotonic() < deadline:
    time.sleep(0.02)
print("part 0 taken while running:", not os.path.exists(part_0))
for i in range(per_part + 1, 2 * per_part + 10):
    outputStream.write({"id": i, "name": f"n{i}", "score": i / 2})
metadata.save({"last": i})
"""


def run(feed: str):
    return execute_run(create_run(feed).id)


def leftovers() -> list[str]:
    work_root = get_settings().work_root
    return sorted(p.name for p in work_root.iterdir()) if work_root.exists() else []


def test_parts_are_staged_while_the_script_runs_and_all_rows_land(tributary):
    create_feed(FeedSpec(name="big", script=WAITS_FOR_PART_0))
    finished = run("big")
    assert finished.status == "succeeded", finished.error
    log, _ = read_log(finished.id)
    assert "part 0 taken while running: True" in log
    count = finished.records_loaded
    assert count == finished.records_written > 100_000 - 1
    rows = warehouse_rows(tributary, "SELECT count(*), count(DISTINCT id), min(id), max(id), count(score) FROM big")
    per_part = (count - 9) // 2
    assert rows == [(count, count, 0, count - 1, count - per_part - 1)]
    # The score field appeared only in the second part: a DOUBLE column, null before.
    types = dict(warehouse_rows(tributary, "SELECT column_name, data_type FROM information_schema.columns "
                                           "WHERE table_name = 'big'"))
    assert types["score"] == "DOUBLE" and types["id"] == "BIGINT"
    assert current_state("big") == {"last": count - 1}
    assert leftovers() == []  # the work dir, the taken parts and the staged files are gone


def test_a_script_failing_after_parts_were_staged_changes_nothing(tributary):
    create_feed(FeedSpec(name="big", script=WAITS_FOR_PART_0 + "raise RuntimeError('late failure')\n"))
    failed = run("big")
    assert failed.status == "failed" and "late failure" in failed.error
    log, _ = read_log(failed.id)
    assert "part 0 taken while running: True" in log  # staging had begun
    assert not table_exists(tributary, "big")
    assert current_state("big") == {}
    assert leftovers() == []


def test_a_part_replaced_by_a_symlink_fails_the_run_and_its_target_is_never_read(tributary, tmp_path):
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"secret": "do not load me"}\n')
    create_feed(FeedSpec(name="sneaky", script=(
        "import os\n"
        "from lib import outputStream\n"
        "outputStream.write({'id': 1})\n"
        f"os.symlink({str(secret)!r}, os.path.join('out', 'spool', 'part-00001.jsonl'))\n"
    )))
    failed = run("sneaky")
    assert failed.status == "failed"
    assert "part-00001.jsonl is not a regular file" in failed.error
    assert not table_exists(tributary, "sneaky")
    assert secret.read_text() == '{"secret": "do not load me"}\n'


def test_a_part_is_renamed_only_once_complete(tributary):
    script = (
        "import os\n"
        "from lib import outputStream, _runtime\n"
        "outputStream.write({'id': 0})\n"
        "print(sorted(os.listdir(os.path.join('out', 'spool'))))\n"
        "for i in range(1, _runtime.RECORDS_PER_PART + 1):\n"
        "    outputStream.write({'id': i})\n"
        "print(sorted(os.listdir(os.path.join('out', 'spool'))))\n"
        "print('per part', _runtime.RECORDS_PER_PART)\n"
    )
    result = preview_script(PreviewRequest(script=script, run_to_completion=True))
    assert result.ok, result.error
    assert "['part-00000.jsonl.partial']" in result.logs
    assert "['part-00000.jsonl', 'part-00001.jsonl.partial']" in result.logs
    assert f"per part {result.count - 1}" in result.logs


@pytest.mark.parametrize("load_type", ["incremental", "truncate_insert"])
def test_a_second_run_of_another_type_takes_the_general_load_and_keeps_the_rows(tributary, load_type):
    """The first run makes an integer column; the second writes text there. The staged path
    cannot widen a column, so the run goes the general way, with the same result as any load:
    the column becomes text and no row is lost."""
    create_feed(FeedSpec(name="mixed", script="from lib import outputStream\noutputStream.write({'v': 1})\n",
                         load_type=load_type))
    assert run("mixed").status == "succeeded"
    edit_feed("mixed", script="from lib import outputStream\noutputStream.write({'v': 'text now'})\n")
    second = run("mixed")
    assert second.status == "succeeded", second.error
    expected = [("1",), ("text now",)] if load_type == "incremental" else [("text now",)]
    assert warehouse_rows(tributary, "SELECT v FROM mixed ORDER BY _tributary_loaded_at, v") == expected
