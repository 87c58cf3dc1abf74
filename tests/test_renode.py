"""What of the Renode adapter runs without Renode: finding Renode, and the reasons given when it is missing.

The adapter's time-domain logic is tested in test_timedomain.py; the Renode suites
(robot/suites/renode_https.robot) need a real Renode and are skipped without one.
"""

import pytest

from atmodem.renode import peripheral, renode_missing


@pytest.fixture
def no_renode(monkeypatch, tmp_path):
    for name in ("PYRENODE_PKG", "PYRENODE_BUILD_DIR", "PYRENODE_BIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path


def test_missing_renode_is_named(no_renode):
    assert "Renode is not installed ('renode' not found)" in renode_missing()
    assert "no package registry this project reaches ships it" in renode_missing()


def test_a_renode_binary_by_path_or_path_variable(no_renode):
    binary = no_renode / "renode"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert renode_missing() is None
    assert renode_missing(str(binary)) is None
    assert "'/nowhere/renode' not found" in renode_missing("/nowhere/renode")


def test_in_process_needs_pyrenode3_and_one_selector(no_renode, monkeypatch):
    monkeypatch.setenv("PYRENODE_BUILD_DIR", str(no_renode))
    assert "pyrenode3 is not installed" in renode_missing(in_process=True)
    assert "not found" in renode_missing()  # a Renode process still needs a binary
    monkeypatch.setenv("PYRENODE_BIN", "/x/renode")
    assert renode_missing(in_process=True).startswith("set only one of PYRENODE_PKG, PYRENODE_BUILD_DIR, PYRENODE_BIN")


def test_peripheral_paths_walk_attributes():
    class Node:
        def __init__(self, **children):
            self.__dict__.update(children)

    usart2 = Node()
    assert peripheral(Node(sysbus=Node(usart2=usart2)), "sysbus.usart2") is usart2
