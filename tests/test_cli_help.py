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


def test_the_progress_bar_does_not_redraw_every_iteration(capsys):
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 4})
    task = neuro.tasks.get("romo", dt=spec.dt)
    net = neuro.compile(spec, "rate", neuro.init_weights(spec, 0))
    neuro.train(net, task, "bptt", iterations=40, batch_size=2, progress=True)
    redraws = capsys.readouterr().err.count("\r")
    assert redraws < 20          # one per iteration (40+) before the postfix stopped forcing a refresh


def test_figures_log_no_findfont_lines_after_neurogym_set_its_font(tmp_path, caplog):
    import logging

    from neuro import plots
    neuro.tasks.get("2af")                       # imports NeuroGym, which sets font.family = "arial"
    with caplog.at_level(logging.DEBUG):
        plots.learning_curves({"a": {"x": [[1.0, 0.5, 0.25]]}}, tmp_path / "f.png", smooth=1)
    assert (tmp_path / "f.png").exists()
    assert not [r for r in caplog.records if "findfont" in r.getMessage()]
