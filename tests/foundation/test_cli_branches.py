"""A command's run builds only its own branch of the parser tree: the same parsers as in the
whole tree (help, usage), and the whole tree's help when no command is named."""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Iterator

import pytest
from helpers import script

from aileron_cli.cli.main import COMMANDS, build_parser


def _children(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for name, child in _children(parser).items():
        yield from _walk(child, (*path, name))


@pytest.mark.parametrize("command", COMMANDS)
def test_a_branch_is_the_whole_trees_branch(command: str) -> None:
    """Every parser under the command prints the same help as its twin in the whole tree."""
    whole = dict(_walk(_children(build_parser())[command], (command,)))
    branch = dict(_walk(_children(build_parser(command))[command], (command,)))
    assert branch.keys() == whole.keys()
    for path, parser in branch.items():
        assert parser.format_help() == whole[path].format_help(), path


def test_the_whole_tree_registers_exactly_the_commands() -> None:
    """The top-level commands are `version` and COMMANDS, in that order."""
    assert list(_children(build_parser())) == ["version", *COMMANDS]


def test_no_command_prints_the_whole_help() -> None:
    """`aileron` alone is a usage error showing every command."""
    done = subprocess.run([script("aileron")], capture_output=True, text=True)
    whole = subprocess.run([script("aileron"), "--help"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == whole.stdout
    assert all(f"\n    {command}" in done.stderr for command in COMMANDS)
