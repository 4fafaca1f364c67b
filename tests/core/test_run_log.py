"""A run's log keeps its head and tail past TRIBUTARY_RUN_LOG_LIMIT_MB, and pages read only
its end."""

from core.bootstrap import execute_run
from core.feeds import FeedSpec, create_feed
from core.run_log import MB, BoundedLines, RunLog, read_tail
from core.runs import create_run, get_run, read_log_tail


def test_a_log_within_its_limit_is_written_whole(tmp_path):
    log = RunLog(tmp_path / "run.log", limit_bytes=1000)
    for n in range(10):
        log(f"line {n}")
    log.close()
    assert (tmp_path / "run.log").read_text() == "".join(f"line {n}\n" for n in range(10))


def test_past_its_limit_a_log_keeps_head_and_tail_and_says_how_much_was_cut(tmp_path):
    path = tmp_path / "run.log"
    log = RunLog(path, limit_bytes=10_000)
    lines = [f"line {n:06d}" for n in range(20_000)]  # 12 bytes each, 240 000 in all
    for line in lines[:1000]:
        log(line)
    live = path.read_text()
    assert "is held back" in live and "TRIBUTARY_RUN_LOG_LIMIT_MB" in live  # a live reader is told
    for line in lines[1000:]:
        log(line)
    log.system("run succeeded")
    log.close()
    text = path.read_text()
    assert len(text) < 10_000 + 500
    shown = text.splitlines()
    assert shown[0] == "line 000000"
    cut = [s for s in shown if "of output cut (TRIBUTARY_RUN_LOG_LIMIT_MB)" in s]
    assert len(cut) == 1 and cut[0].startswith("… ") and " MB of output cut" in cut[0]
    assert shown[-1].endswith("run succeeded") and shown[-2] == "line 019999"
    kept = [s for s in shown if s.startswith("line ")]
    assert kept == sorted(kept) and all(len(s) == 11 for s in kept)  # whole lines, in order
    assert not list(tmp_path.glob("run.log.tail*"))  # the rolling tail is gone
    cut_mb = float(cut[0].split()[1])
    assert abs(cut_mb * MB + len(kept) * 12 - 240_000) < 0.05 * MB


def test_read_tail_reads_from_the_end_only(tmp_path):
    path = tmp_path / "big.log"
    path.write_text("".join(f"{n}\n" for n in range(100_000)))
    text, offset, skipped = read_tail(path, 1000)
    assert skipped and offset == path.stat().st_size and len(text) <= 1000
    assert text.endswith("99999\n") and text.split("\n")[0].isdigit()  # from a line start
    with open(path, "a") as handle:
        handle.write("more\n")
    assert read_tail(path, 1000, offset) == ("more\n", offset + 5, False)
    assert read_tail(tmp_path / "none.log", 10, 7) == ("", 7, False)


def test_test_run_output_in_memory_is_bounded():
    lines = BoundedLines(limit_bytes=1000)
    for n in range(10_000):
        lines.append(f"line {n:05d}")
    kept = lines.lines()
    assert kept[0] == "line 00000" and kept[-1] == "line 09999"
    assert sum(len(s) + 1 for s in kept) < 1100
    assert any("of output cut" in s for s in kept)


def test_a_chatty_run_is_cut_to_the_limit(tributary, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_RUN_LOG_LIMIT_MB", "1")
    script = ("import sys\nfor i in range(60000):\n    print('chatter', i, 'x' * 80)\n"
              "print('the last line')\nfrom lib import outputStream\noutputStream.write({'n': 1})\n")
    create_feed(FeedSpec(name="chatty", script=script))
    finished = execute_run(create_run("chatty").id)
    assert finished.status == "succeeded", finished.error
    path = get_run(finished.id).log_path
    size = __import__("os").path.getsize(path)
    assert size < 1.05 * MB
    text, _, skipped = read_log_tail(finished.id, 64 * 1024)
    assert skipped and "the last line" in text and "run succeeded" in text
    head = open(path).read(4096)
    assert "chatter 0 " in head
    assert "MB of output cut (TRIBUTARY_RUN_LOG_LIMIT_MB)" in open(path).read()
