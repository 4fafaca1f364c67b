"""Collecting spool parts: in order, only once complete, only regular files, each part once."""

import os

import pytest

from common.errors import TributaryError
from runners.parts import PartCollector


@pytest.fixture
def spool(tmp_path):
    path = tmp_path / "work" / "out" / "spool"
    path.mkdir(parents=True)
    return path


def write(spool, name, text="{}\n"):
    (spool / name).write_text(text)


def test_complete_parts_are_moved_out_in_sequence(spool, tmp_path):
    collector = PartCollector(spool, tmp_path / "parts")
    assert collector.collect() == []  # nothing yet
    write(spool, "part-00000.jsonl.partial")
    assert collector.collect() == []  # still being written
    write(spool, "part-00000.jsonl")
    write(spool, "part-00002.jsonl")  # out of sequence: waits for part 1
    assert [p.name for p in collector.collect()] == ["part-00000.jsonl"]
    assert not (spool / "part-00000.jsonl").exists() and (tmp_path / "parts" / "part-00000.jsonl").exists()
    write(spool, "part-00001.jsonl")
    assert [p.name for p in collector.collect()] == ["part-00001.jsonl", "part-00002.jsonl"]
    assert [p.name for p in collector.parts] == ["part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl"]


def test_once_the_script_ended_every_part_left_is_taken(spool, tmp_path):
    collector = PartCollector(spool, tmp_path / "parts")
    write(spool, "part-00003.jsonl")
    assert collector.collect() == []
    assert [p.name for p in collector.collect(final=True)] == ["part-00003.jsonl"]


def test_a_symlink_is_refused_and_its_target_left_alone(spool, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("key")
    os.symlink(secret, spool / "part-00000.jsonl")
    collector = PartCollector(spool, tmp_path / "parts")
    with pytest.raises(TributaryError, match="part-00000.jsonl is not a regular file"):
        collector.collect()
    assert secret.read_text() == "key"


def test_a_part_written_again_after_it_was_taken_is_refused(spool, tmp_path):
    collector = PartCollector(spool, tmp_path / "parts")
    write(spool, "part-00000.jsonl", '{"id": 1}\n')
    collector.collect()
    write(spool, "part-00000.jsonl", '{"id": 666}\n')
    with pytest.raises(TributaryError, match="wrote the spool part part-00000.jsonl again"):
        collector.collect(final=True)
    assert (tmp_path / "parts" / "part-00000.jsonl").read_text() == '{"id": 1}\n'


def test_a_spool_folder_replaced_by_a_symlink_is_refused_and_its_files_left_alone(tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "part-00000.jsonl").write_text('{"secret": 1}\n')
    (tmp_path / "work" / "out").mkdir(parents=True)
    os.symlink(host, tmp_path / "work" / "out" / "spool")
    collector = PartCollector(tmp_path / "work" / "out" / "spool", tmp_path / "parts")
    with pytest.raises(TributaryError, match="spool folder is not a folder of the run's work dir"):
        collector.collect(final=True)
    assert (host / "part-00000.jsonl").exists()


def test_a_hard_link_to_another_file_is_refused(spool, tmp_path):
    other = tmp_path / "other.jsonl"
    other.write_text('{"secret": 1}\n')
    os.link(other, spool / "part-00000.jsonl")
    collector = PartCollector(spool, tmp_path / "parts")
    with pytest.raises(TributaryError, match="hard link"):
        collector.collect()
