"""Live reload: edits are picked up after the interval; a bad edit keeps the last good rules."""

import logging
import os

import pytest

from approver.rules import LiveRules, RulesError

GOOD = "version: 1\nrules:\n  - id: a\n    then: deny\n"
BETTER = "version: 1\nrules:\n  - id: a\n    then: approve\n  - id: b\n    then: deny\n"
BAD = "version: 1\nrules:\n  - id: a\n    then: maybe\n"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def edit(path, text, bump):
    """Rewrite `path` and move its mtime forward, so the edit is seen even on coarse clocks."""
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + bump * 1_000_000_000))


@pytest.fixture
def rules_dir(tmp_path):
    """A rules folder holding one good file."""
    (tmp_path / "main.yaml").write_text(GOOD)
    return tmp_path


def test_good_edit_is_picked_up_after_the_check_interval(rules_dir):
    clock = Clock()
    live = LiveRules(rules_dir, check_interval=2.0, clock=clock)
    first = live.current()
    edit(rules_dir / "main.yaml", BETTER, bump=1)
    clock.now += 1.0
    assert live.current() is first  # within the interval: the files are not even looked at
    clock.now += 1.0
    assert [r.id for r in live.current().rules] == ["a", "b"]
    assert live.current().revision != first.revision
    assert live.reload_failures == 0 and live.last_error is None


def test_new_file_in_the_folder_is_picked_up(rules_dir):
    clock = Clock()
    live = LiveRules(rules_dir, check_interval=2.0, clock=clock)
    (rules_dir / "extra.yaml").write_text("version: 1\nrules:\n  - id: z\n    then: review\n")
    clock.now += 5
    assert [r.id for r in live.current().rules] == ["z", "a"]


def test_bad_edit_keeps_last_good_rules_and_logs_the_problems(rules_dir, caplog):
    clock = Clock()
    live = LiveRules(rules_dir, check_interval=2.0, clock=clock)
    good = live.current()
    edit(rules_dir / "main.yaml", BAD, bump=1)
    clock.now += 3
    with caplog.at_level(logging.WARNING, logger="approver.rules.live"):
        assert live.current() is good
    assert live.reload_failures == 1
    assert live.last_error and live.last_error[0].line == 4
    assert "main.yaml:4:" in caplog.text
    clock.now += 3
    live.current()
    assert live.reload_failures == 1  # the same bad edit is counted once
    edit(rules_dir / "main.yaml", BETTER, bump=2)
    clock.now += 3
    assert [r.id for r in live.current().rules] == ["a", "b"]
    assert live.last_error is None


def test_first_load_failure_raises(tmp_path):
    (tmp_path / "main.yaml").write_text(BAD)
    with pytest.raises(RulesError):
        LiveRules(tmp_path)


def test_reload_checks_now_whatever_the_interval(rules_dir):
    live = LiveRules(rules_dir, check_interval=3600)
    edit(rules_dir / "main.yaml", BETTER, bump=1)
    assert [r.id for r in live.reload().rules] == ["a", "b"]
