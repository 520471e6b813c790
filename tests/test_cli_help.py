"""Discoverability: ``neuro list``, defaults in every ``--help``, each study's options in ``reproduce --help``."""
import pytest

import neuro
from neuro import catalog
from neuro.cli import COMMANDS, main


def _help(capsys, *argv):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("kind, names", [("rules", neuro.rules.names), ("tasks", neuro.tasks.names),
                                         ("models", neuro.models.names), ("studies", catalog.study_names),
                                         ("backends", lambda: sorted(neuro.compiler.BACKENDS))])
def test_list_names_every_registry_entry_with_a_description(kind, names, capsys):
    assert main(["list", kind]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    listed = {line.split()[0]: line.split(None, 1)[1] for line in lines}
    assert sorted(listed) == sorted(names())
    assert all(len(text) > 15 and text != "(no description)" for text in listed.values())


def test_every_command_help_shows_the_defaults(capsys):
    for command in COMMANDS:
        text = " ".join(_help(capsys, command).split())
        if command == "train":
            for default in ("(default: 500)", "(default: 0.001)", "(default: 32)", "(default: romo)"):
                assert default in text
        if command == "lyapunov":
            assert "(default: 10)" in text and "(default: 1000)" in text


def test_reproduce_help_shows_each_studys_options(capsys):
    text = _help(capsys, "reproduce")
    for study in catalog.study_names():
        assert f"\n{study}:\n" in text
    # the initialization study's own options, under its name
    init = text.split("\ninitialization:\n")[1]
    assert "--iterations" in init and "--seeds" in init
