"""``FileFollower``: complete lines only, bounded reads, truncation, replacement, disappearance."""

from __future__ import annotations

import os
from pathlib import Path

from acp_bridge.agents._jsonl_files import FileFollower


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as file:
        file.write(data)


def datas(follower: FileFollower, max_bytes: int = 1 << 20) -> list[bytes]:
    return [line.data for line in follower.read(max_bytes).lines]


def test_partial_line_is_held_until_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"n":1}\n{"n":')
    follower = FileFollower(path)
    first = follower.read(1 << 20)
    assert [line.data for line in first.lines] == [b'{"n":1}']
    assert first.at_end
    assert follower.pending == b'{"n":'
    assert datas(follower) == []  # nothing new
    append(path, b"2")
    assert datas(follower) == []  # still no newline
    append(path, b'}\n{"n":3}\n')
    result = follower.read(1 << 20)
    assert [(line.number, line.offset, line.data) for line in result.lines] == [
        (2, 8, b'{"n":2}'),
        (3, 16, b'{"n":3}'),
    ]
    assert follower.pending == b""


def test_reads_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"".join(b'{"n":%d}\n' % i for i in range(10)))  # 8 bytes a line
    follower = FileFollower(path)
    seen: list[bytes] = []
    reads = 0
    while True:
        result = follower.read(20)
        reads += 1
        seen += [line.data for line in result.lines]
        if result.at_end:
            break
    assert seen == [b'{"n":%d}' % i for i in range(10)]
    assert reads == 4  # 80 bytes in chunks of 20


def test_missing_file_then_created(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    follower = FileFollower(path)
    assert follower.read(100).missing
    path.write_bytes(b'{"n":1}\n')
    assert datas(follower) == [b'{"n":1}']


def test_truncation_is_reported_and_read_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"n":1}\n{"n":2}\n')
    follower = FileFollower(path)
    assert len(datas(follower)) == 2
    path.write_bytes(b'{"m":1}\n')  # truncated (same inode) and rewritten, shorter
    result = follower.read(100)
    assert result.rewritten
    assert [(line.number, line.data) for line in result.lines] == [(1, b'{"m":1}')]


def test_rewrite_past_the_read_position_is_noticed_by_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"index":0,"emitted_at_ms":1}\n')
    follower = FileFollower(path)
    assert len(datas(follower)) == 1
    # Truncated and written again, longer than before, between two reads.
    path.write_bytes(b'{"index":0,"emitted_at_ms":2}\n{"index":1,"emitted_at_ms":3}\n')
    result = follower.read(1 << 20)
    assert result.rewritten
    assert [line.data for line in result.lines] == [
        b'{"index":0,"emitted_at_ms":2}',
        b'{"index":1,"emitted_at_ms":3}',
    ]


def test_replacement_by_another_file(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"n":1}\n')
    follower = FileFollower(path)
    assert len(datas(follower)) == 1
    other = tmp_path / "new.jsonl"
    other.write_bytes(b'{"n":1}\n{"n":2}\n')  # same first line, longer: only the inode tells
    os.replace(other, path)
    result = follower.read(100)
    assert result.rewritten
    assert [line.data for line in result.lines] == [b'{"n":1}', b'{"n":2}']


def test_disappearance_and_return(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"n":1}\n')
    follower = FileFollower(path)
    assert len(datas(follower)) == 1
    path.unlink()
    assert follower.read(100).missing
    path.write_bytes(b'{"n":9}\n')
    result = follower.read(100)
    assert [line.data for line in result.lines] == [b'{"n":9}']


def test_overlong_lines_are_dropped_without_buffering(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    follower = FileFollower(path, max_line_bytes=16)
    path.write_bytes(b'{"n":1}\n' + b"x" * 40)
    result = follower.read(1 << 20)
    assert [line.data for line in result.lines] == [b'{"n":1}']
    assert follower.pending == b""  # not held in memory
    append(path, b"x" * 40 + b'\n{"n":2}\n' + b"y" * 17 + b"\n")
    result = follower.read(1 << 20)
    assert [line.data for line in result.lines] == [b'{"n":2}']
    assert result.dropped == [(2, 80), (4, 17)]


def test_finish_returns_the_incomplete_last_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"n":1}\n{"torn')
    follower = FileFollower(path)
    datas(follower)
    assert follower.finish() == b'{"torn'
    assert follower.pending == b""


def test_same_size_rewrite_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"index":0,"emitted_at_ms":1}\n')
    follower = FileFollower(path)
    assert len(datas(follower)) == 1
    before = path.stat()
    path.write_bytes(b'{"index":0,"emitted_at_ms":7}\n')
    # Make sure the modification time moved even on a coarse-grained filesystem.
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    result = follower.read(100)
    assert result.rewritten
    assert [line.data for line in result.lines] == [b'{"index":0,"emitted_at_ms":7}']
    assert follower.read(100).lines == []  # and only once
