"""The YAML schema: defaults, one clear error per kind of mistake, the example file, check."""
from __future__ import annotations

from dataclasses import FrozenInstanceError, is_dataclass
from pathlib import Path
import re
import subprocess
import sys

import pytest

from appliance.box import config as cfg
from appliance.box.config import Config, ConfigError, check_main, load, loads

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "config.yaml"


def errors_of(text: str, tmp_path: Path, name: str = "config.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load(path)
    return [line.replace(str(tmp_path) + "/", "") for line in info.value.problems]


def test_empty_file_is_every_default(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("# nothing set\n")
    config = load(path)
    assert config == Config()
    assert config.player.channel == 10 and config.tempo.bpm == 120.0
    assert config.model.precision == "int8" and config.state.dir == "/var/lib/groovebox"


def test_tree_is_frozen_dataclasses() -> None:
    config = Config()
    assert is_dataclass(config.player)
    with pytest.raises(FrozenInstanceError):
        config.player.channel = 3  # type: ignore[misc]


def test_values_are_read_with_their_types(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "tempo: {bpm: 96, clock: auto, send_clock: true}\n"
        "player:\n  channel: 11\n  drum_map: TR-8S\n  notes: {ride: 53}\n"
        "midi:\n  inputs: Keystation\n  outputs: [TR-8S, 'Midi Through']\n"
        "midi_map:\n  channel: 16\n  cc: {21: density, 64: freeze}\n  notes: {36: resample}\n"
        "model: {dir: ../models/groove-vae, seed: 7}\n")
    c = load(path)
    assert c.tempo.bpm == 96.0 and isinstance(c.tempo.bpm, float)
    assert c.tempo.clock == "auto" and c.tempo.send_clock is True
    assert c.player.notes == {"ride": 53}
    assert c.midi.inputs == ("Keystation",) and c.midi.outputs == ("TR-8S", "Midi Through")
    assert c.midi_map.cc == {21: "density", 64: "freeze"} and c.midi_map.notes == {36: "resample"}
    # relative paths are taken from the config file's directory
    assert c.model.dir == str((tmp_path / "../models/groove-vae").resolve())
    assert c.model.seed == 7


def test_wrong_type(tmp_path: Path) -> None:
    errors = errors_of("player:\n  channel: ten\n", tmp_path)
    assert errors == ["config.yaml:2 player.channel: expected a whole number, got 'ten' (text); "
                      "write a plain number without quotes or units"]
    errors = errors_of("tempo:\n  send_clock: maybe\n", tmp_path)
    assert errors[0].startswith("config.yaml:2 tempo.send_clock: expected true or false")
    errors = errors_of("player:\n  channel: 9.5\n", tmp_path)
    assert errors[0].startswith("config.yaml:2 player.channel: expected a whole number, got 9.5")
    errors = errors_of("generator: 3\n", tmp_path)
    assert errors[0].startswith("config.yaml:1 generator: expected a mapping of keys (density,")


def test_out_of_range(tmp_path: Path) -> None:
    text = "model:\n  precision: int8\n" + "\n" * 11 + "player:\n  channel: 17\n"
    assert errors_of(text, tmp_path) == ["config.yaml:15 player.channel: 17 is not in 1..16"]
    assert errors_of("tempo: {bpm: 20}\n", tmp_path) == ["config.yaml:1 tempo.bpm: 20 is not in 40..300"]
    assert errors_of("generator:\n  density: 1.5\n", tmp_path) == [
        "config.yaml:2 generator.density: 1.5 is not in 0..1"]


def test_unknown_key_with_did_you_mean(tmp_path: Path) -> None:
    assert errors_of("player:\n  chanel: 3\n", tmp_path) == [
        "config.yaml:2 player.chanel: unknown key; did you mean 'channel'?"]
    assert errors_of("tempos: {bpm: 100}\n", tmp_path) == [
        "config.yaml:1 tempos: unknown key; did you mean 'tempo'?"]
    # nothing close: the allowed keys are listed instead
    errors = errors_of("din:\n  zzz: 1\n", tmp_path)
    assert errors == ["config.yaml:2 din.zzz: unknown key (allowed: enabled, device, baud, input, output)"]


def test_unknown_choice_with_did_you_mean(tmp_path: Path) -> None:
    errors = errors_of("player: {drum_map: tr8x}\n", tmp_path)
    assert errors[0].startswith("config.yaml:1 player.drum_map: 'tr8x' is not allowed; did you mean 'tr-8s'?")
    errors = errors_of("player:\n  notes:\n    kik: 36\n", tmp_path)
    assert errors[0].startswith("config.yaml:3 player.notes.kik: 'kik' is not allowed; did you mean 'kick'?")
    errors = errors_of("midi_map:\n  cc:\n    74: densty\n", tmp_path)
    assert errors[0].startswith("config.yaml:3 midi_map.cc.74: 'densty' is not allowed; did you mean 'density'?")


def test_bad_yaml_syntax_names_its_line(tmp_path: Path) -> None:
    errors = errors_of("tempo:\n  bpm: 120\n   clock: internal\n", tmp_path)
    assert len(errors) == 1
    assert re.match(r"config\.yaml:3: bad YAML: mapping values are not allowed here", errors[0])
    errors = errors_of("player: {channel: 3\nlog_level: info\n", tmp_path)
    assert re.match(r"config\.yaml:\d+: bad YAML: ", errors[0])
    errors = errors_of("tempo:\n\tbpm: 120\n", tmp_path)
    assert re.match(r"config\.yaml:2: bad YAML: .*tab", errors[0])


def test_a_slip_the_parser_notices_late_is_pointed_at_on_its_own_line(tmp_path: Path) -> None:
    """The parser notices a key without its colon, or a list left open, only lines later (at the
    next key, through comments, or at the file's end): the error names its own line and the
    earlier line where the slip is; where its own line is the slip, no other."""
    cases = [("generator:\n  density 0.5\n  # how far the drummer strays\n  variation: 1.0\n", 4, 2),
             ("generator:\n  density 0.5\n  variation: 1.0\n", 3, 2),
             ("generator:\n  density: 0.5\n  variation 1.0\n", 4, 3),
             ("player:\n  notes: [36, 38,\n    42, 46\n  channel: 10\n", 4, 2)]
    for text, noticed, slip in cases:
        errors = errors_of(text, tmp_path)
        assert len(errors) == 1
        assert re.match(rf"config\.yaml:{noticed}: bad YAML: .*line {slip} ", errors[0]), errors
    errors = errors_of("tempo:\n  bpm: 120\n   clock: internal\n", tmp_path)    # its own line: too deep
    assert re.match(r"config\.yaml:3: bad YAML: .*deeper than line 2", errors[0]) and "earlier" not in errors[0], errors
    errors = errors_of("player:\n  channel: 10: 3\n", tmp_path)                    # its own line, no other
    assert re.match(r"config\.yaml:2: bad YAML: ", errors[0]) and "line 1" not in errors[0], errors


def test_a_section_s_key_at_the_top_is_sent_back_under_its_section(tmp_path: Path) -> None:
    """A key that lost its indent reads as a top-level key: the error names the section(s) it belongs to."""
    errors = errors_of("midi:\n  inputs: [Keystation]\noutputs: [TR-8S]\nenabled: true\n", tmp_path)
    assert errors[0].startswith("config.yaml:3 outputs: unknown key") and "midi.outputs" in errors[0], errors
    assert "din.enabled" in errors[1] and "gpio.enabled" in errors[1], errors
    errors = errors_of("[Keystation]: true\n? {a: 1}\n: 2\n", tmp_path)        # keys no section has: one line each
    assert len(errors) == 2 and all("unknown key" in e for e in errors), errors
    errors = errors_of("midi:\n  inputs:\n    - name: a\n      port: b: c\n", tmp_path)   # a list item's keys: no hint
    assert re.match(r"config\.yaml:4: bad YAML: ", errors[0]) and "deeper" not in errors[0], errors



def test_duplicate_key(tmp_path: Path) -> None:
    errors = errors_of("player:\n  channel: 3\n  channel: 4\n", tmp_path)
    assert errors == ["config.yaml:3 player.channel: appears twice; keep one"]


def test_every_mistake_is_reported_at_once(tmp_path: Path) -> None:
    errors = errors_of("player: {channel: 0}\ntempo: {bpm: 1000}\nlog_level: loud\n", tmp_path)
    assert [e.split(" ")[0] for e in errors] == ["config.yaml:1", "config.yaml:2", "config.yaml:3"]


def test_knob_needs_exactly_one_source(tmp_path: Path) -> None:
    errors = errors_of("gpio:\n  knobs:\n    density: {invert: true}\n", tmp_path)
    assert errors == ["config.yaml:3 gpio.knobs.density: give exactly one of mcp3008: CHANNEL (a pot) "
                      "or encoder: [PIN_A, PIN_B] (a rotary encoder)"]


def test_pin_conflicts(tmp_path: Path) -> None:
    errors = errors_of("gpio:\n  buttons: {freeze: 17, clear: 17}\n", tmp_path)
    assert errors == ["config.yaml:2 gpio.buttons.clear: GPIO17 is already used by gpio.buttons.freeze"]
    errors = errors_of("gpio:\n  buttons:\n    freeze: 10\n", tmp_path)
    assert errors == ["config.yaml:3 gpio.buttons.freeze: GPIO10 is the MCP3008's SPI MOSI; pick another pin"]
    errors = errors_of("din: {enabled: true}\ngpio:\n  buttons:\n    tap: 14\n", tmp_path)
    assert errors == ["config.yaml:4 gpio.buttons.tap: GPIO14 is the DIN MIDI UART TX; pick another pin"]
    # encoders instead of pots free the SPI pins
    path = tmp_path / "enc.yaml"
    path.write_text("gpio:\n  knobs:\n    density: {encoder: [10, 11]}\n    variation: null\n"
                    "    tempo: null\n    humanise: null\n")
    assert load(path).gpio.knobs.density.encoder == (10, 11)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "missing.yaml")
    assert "missing.yaml: cannot read" in str(info.value)


def test_a_pipe_a_directory_and_a_file_of_many_items_are_refused_at_once(tmp_path: Path) -> None:
    """A fault harness: a named pipe at the path held `config check` (and a reload) forever; a
    1 MiB file of 40,000 small mappings held the main thread 11.6 s (the watchdog unpinged)."""
    import os
    import time
    pipe = tmp_path / "pipe.yaml"
    os.mkfifo(pipe)
    for path in (pipe, tmp_path):
        with pytest.raises(ConfigError) as info:
            load(path)
        assert "not a file" in str(info.value)
    example = Path(__file__).resolve().parents[1] / "examples" / "config.yaml"
    big = tmp_path / "big.yaml"
    big.write_text(example.read_text() + "\n" + "\n".join(f"x{i}: {{a: 1, b: [1, 2]}}" for i in range(40_000)))
    started = time.process_time()
    with pytest.raises(ConfigError) as info:
        load(big)
    assert "YAML items" in str(info.value) and len(info.value.problems) == 1
    assert time.process_time() - started < 2.0      # refused before the tree is built (8.5 s to build it)
    assert load(example).tempo.bpm > 0                  # the example is far below the cap


def test_engine_settings_and_controls_mapping() -> None:
    c = loads("player: {drum_map: volca-drum, lookahead_ms: 80, gate_steps: 0.25, notes: {kick: 48}}\n"
              "loop: {input_channel: 0, swap_at: step, forget_passes: 3}\n"
              "generator: {variation: 1.5, density: 0.7}\n")
    s = c.engine_settings()
    assert s.lookahead == pytest.approx(0.08) and s.gate == 0.25 and s.swap_at == "step"
    assert s.input_channel is None and s.forget_passes == 3
    assert s.notes[0] == 48 and s.channels[:4] == (1, 2, 3, 4)
    controls = c.controls()
    assert controls.temperature == 1.5 and controls.density == 0.7
    c2 = loads("player: {channel: 5}\nloop: {input_channel: 2}\n")
    assert c2.engine_settings().channels == (5,) * 9
    assert c2.engine_settings().input_channel == 2


def test_a_lookahead_shorter_than_the_player_turn_is_played_at_it(capsys, tmp_path: Path) -> None:
    """A fault hunt set `player.lookahead_ms: 1` "for less latency": notes left p50 3.8 ms / p99
    9.1 ms late (the player thread wakes every 10 ms), against 0.1 / 0.4 ms at 50. Refusing it
    would throw an old config away for the defaults (a code review), so the box plays 10 and
    `config check` says so."""
    from appliance.box.config import LOOKAHEAD_FLOOR_MS
    from appliance.box.player_thread import TICK_S
    assert LOOKAHEAD_FLOOR_MS == pytest.approx(TICK_S * 1000)
    for ms, plays in ((1, 0.010), (10, 0.010), (15, 0.015), (50, 0.050)):
        config = loads(f"player: {{lookahead_ms: {ms}}}\n")
        assert config.player.lookahead_ms == ms and config.engine_settings().lookahead == pytest.approx(plays)
    path = tmp_path / "c.yaml"
    path.write_text("player: {lookahead_ms: 5}\n")
    assert check_main([str(path)]) == 0
    assert "plays 10" in capsys.readouterr().out


def test_example_documents_every_key_with_its_default() -> None:
    config = load(EXAMPLE)
    assert config == Config(), "examples/config.yaml must hold exactly the defaults"
    text = EXAMPLE.read_text()
    for key in cfg.flatten(Config()):
        leaf = key.split(".")[-1]
        assert re.search(rf"[\s{{]{re.escape(leaf)}:", text), f"{key} is not in the example"
    # every key line carries a comment (on it or just above it)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s*[a-z_]+:", line) and "#" not in line:
            assert lines[i - 1].strip().startswith("#"), f"line {i + 1} has no comment: {line!r}"


def test_check_says_when_mapped_notes_would_be_taken_from_the_keys(tmp_path: Path, capsys) -> None:
    """A musician's review: README's pads {36: freeze, 37: end, 38: style_bossa} on every channel;
    the left hand's C2 froze the loop every bar, C#2 ended the song, and check said OK."""
    cases = {"midi_map: {notes: {36: freeze, 37: end}}\n": True,
             "midi_map: {channel: 1, notes: {36: freeze}}\nloop: {input_channel: 1}\n": True,
             "midi_map: {channel: 10, notes: {36: freeze}}\n": False,
             "midi_map: {channel: 10, notes: {36: freeze}}\nloop: {input_channel: 1}\n": False,
             "midi_map: {cc: {21: density}}\n": False}
    for text, warned in cases.items():
        path = tmp_path / "c.yaml"
        path.write_text(text)
        assert check_main([str(path)]) == 0
        out = capsys.readouterr().out
        assert ("press them instead of playing" in out) == warned, (text, out)


def test_check_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("player: {drum_map: tr-8s}\nmidi_map: {cc: {21: density}}\n")
    assert check_main(["check", str(good)]) == 0
    said = capsys.readouterr()
    out = said.out
    assert "OK" in out and "kick=36/ch10" in out and "CC 21 -> density" in out
    assert ("lacks" in said.err) != Path(Config().model.dir).is_dir()   # the default /opt/groovebox/... here
    models = Path(__file__).resolve().parents[1] / "models" / "groove-vae"
    with_model = tmp_path / "with_model.yaml"
    with_model.write_text(f"model: {{dir: {models}}}\n")
    assert check_main([str(with_model)]) == 0
    assert "lacks" not in capsys.readouterr().err
    no_model = tmp_path / "no_model.yaml"
    no_model.write_text(f"model: {{dir: {tmp_path / 'nowhere'}}}\n")   # a fault harness: said OK, then run exited 1
    assert check_main([str(no_model)]) == 0
    said = capsys.readouterr()
    assert "OK" in said.out and "nowhere lacks encoder.onnx" in said.err and "groovebox run" in said.err
    import shutil
    cut = tmp_path / "cut-model"      # a stage tech's review: a truncated copy passed the check
    shutil.copytree(models, cut)
    graph = cut / "decoder.int8.onnx"
    graph.write_bytes(graph.read_bytes()[:5000])
    truncated = tmp_path / "truncated.yaml"
    truncated.write_text(f"model: {{dir: {cut}}}\n")
    assert check_main([str(truncated)]) == 0
    said = capsys.readouterr()
    assert "decoder.int8.onnx" in said.err and "cannot load" in said.err and "groovebox run" in said.err
    bad = tmp_path / "bad.yaml"
    bad.write_text("player: {chanel: 3}\n")
    assert check_main([str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml:1 player.chanel: unknown key; did you mean 'channel'?" in err
    assert check_main([]) == 2


def test_check_names_a_drum_machine_heard_on_every_channel(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A drum machine listed as an input (for its clock) sends its own notes too."""
    both = tmp_path / "both.yaml"
    both.write_text("midi: {inputs: [Keystation, TR-8S], outputs: [TR-8S]}\ntempo: {clock: external}\n")
    assert check_main([str(both)]) == 0
    out = capsys.readouterr().out
    assert "every channel" in out and "'TR-8S'" in out and "loop.input_channel" in out
    both.write_text("midi: {inputs: [Keystation, TR-8S], outputs: [TR-8S]}\nloop: {input_channel: 1}\n")
    assert check_main([str(both)]) == 0
    out = capsys.readouterr().out
    assert "channel 1 only" in out and "loop.input_channel" not in out


def test_a_number_in_exponent_form_is_written_out_for_you(tmp_path: Path) -> None:
    """YAML 1.1 reads 1e9 as text: the line says so, and what to write."""
    with pytest.raises(ConfigError) as e:
        loads("tempo: {bpm: 1e2}\ngenerator: {density: 5e-1}\n")
    assert "YAML reads 1e2 as text: write it out (100)" in e.value.problems[0]
    assert "(0.5)" in e.value.problems[1]


def test_check_as_a_command(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("player:\n  channel: 17\n")
    run = subprocess.run([sys.executable, "-m", "appliance.box.config", "check", str(bad)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1
    assert f"{bad}:2 player.channel: 17 is not in 1..16" in run.stderr


def test_groovebox_config_check_through_the_cli(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tempo:\n  bpm: fast\n")
    groovebox = Path(sys.executable).parent / "groovebox"
    run = subprocess.run([str(groovebox), "config", "check", str(bad)], capture_output=True, text=True)
    assert run.returncode == 1
    assert f"{bad}:2 tempo.bpm: expected a number, got 'fast' (text)" in run.stderr
    good = tmp_path / "good.yaml"
    good.write_text("tempo: {bpm: 99}\n")
    run = subprocess.run([str(groovebox), "config", "check", str(good)], capture_output=True, text=True)
    assert run.returncode == 0 and "OK" in run.stdout


def test_a_broken_file_at_start_runs_the_last_good_config(tmp_path: Path, caplog) -> None:
    import logging
    from appliance.box.config import load_with_fallback
    state = tmp_path / "state"
    path = tmp_path / "config.yaml"
    path.write_text(f"state: {{dir: {state}}}\nplayer: {{drum_map: tr-8s, channel: 9}}\n")
    config, problems = load_with_fallback(path, fallback_dir=state)
    assert problems == [] and config.player.channel == 9
    assert (state / "config.last-good.yaml").read_text() == path.read_text()
    path.write_text(f"state: {{dir: {state}}}\nplayer: {{drum_map: tr-8s, channel: 99}}\n")
    caplog.set_level(logging.ERROR, logger="appliance.box.config")
    config, problems = load_with_fallback(path, fallback_dir=state)
    assert problems == [f"{path}:2 player.channel: 99 is not in 1..16"]
    assert config.player.channel == 9 and config.player.drum_map == "tr-8s"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "99 is not in 1..16" in lines[0] and "last good" in lines[0]
    # the broken file did not replace the good copy
    assert "channel: 9}" in (state / "config.last-good.yaml").read_text()
    # nothing kept at all: the defaults, and still a start
    config, problems = load_with_fallback(path, fallback_dir=tmp_path / "empty")
    assert problems and config == Config()
    # an empty file is a broken one (the good copy runs), and an empty copy is no good copy
    path.write_text("")
    config, problems = load_with_fallback(path, fallback_dir=state)
    assert "empty" in problems[0] and config.player.channel == 9
    (state / "config.last-good.yaml").write_text("\n")
    config, problems = load_with_fallback(path, fallback_dir=state)
    assert config == Config()
    assert check_main([str(path)]) == 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize("copy", ["torn", "fifo", "directory"])
def test_a_last_good_copy_torn_or_not_a_file_does_not_stop_the_start(tmp_path: Path, caplog, copy: str) -> None:
    """A last-good copy torn by a power cut (0xFF pages: no UTF-8), a FIFO or a directory where it
    is kept: the good config still starts the box (a fault hunt: a torn copy made every start
    fail with a UnicodeDecodeError, and a FIFO would block it); a torn copy or a FIFO is replaced."""
    import logging
    import os
    from appliance.box.config import load_with_fallback
    state = tmp_path / "state"
    state.mkdir()
    keep = state / "config.last-good.yaml"
    if copy == "torn":
        keep.write_bytes(b"player: {channel: 9}\n" + b"\xff" * 4096)
    elif copy == "fifo":
        os.mkfifo(keep)
    else:
        keep.mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(f"state: {{dir: {state}}}\nplayer: {{channel: 7}}\n")
    caplog.set_level(logging.WARNING, logger="appliance.box.config")
    config, problems = load_with_fallback(path, fallback_dir=state)
    assert problems == [] and config.player.channel == 7
    if copy == "directory":
        assert keep.is_dir() and any("last-good" in r.getMessage() for r in caplog.records)
    else:
        assert keep.read_text() == path.read_text()
    # and a broken config falls back past a copy that is no good, to the defaults, at once
    if copy != "torn":
        path.write_text("player: {channel: 99}\n")
        config, problems = load_with_fallback(path, fallback_dir=state)
        assert problems and config.player.channel == (7 if copy == "fifo" else Config().player.channel)


def test_the_last_good_copy_is_kept_where_it_is_looked_for(tmp_path: Path, caplog, monkeypatch) -> None:
    """$STATE_DIRECTORY (systemd's StateDirectory, make run's out/state) is where the copy is kept
    and found, whatever the file's own state.dir (a broken file cannot say); the error line tells
    how to reload where the box runs: the unit's name under systemd, a signal elsewhere."""
    import logging
    from appliance.box.config import load_with_fallback
    kept = tmp_path / "kept"
    monkeypatch.setenv("STATE_DIRECTORY", str(kept))
    monkeypatch.delenv("GROOVEBOX_UNIT", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(f"state: {{dir: {tmp_path / 'elsewhere'}}}\nplayer: {{channel: 9}}\n")
    assert load_with_fallback(path)[0].player.channel == 9
    assert (kept / "config.last-good.yaml").exists() and not (tmp_path / "elsewhere").exists()
    path.write_text("player: {channel: 99}\n")
    caplog.set_level(logging.ERROR, logger="appliance.box.config")
    assert load_with_fallback(path)[0].player.channel == 9
    assert "kill -HUP" in caplog.records[-1].getMessage() and "systemctl" not in caplog.records[-1].getMessage()
    monkeypatch.setenv("GROOVEBOX_UNIT", "groovebox.service")
    load_with_fallback(path)
    assert "systemctl reload groovebox.service" in caplog.records[-1].getMessage()


# --------------------------------------------------------------------------- review fixes

def _leaves(obj, path=()):
    for f in cfg._fields(type(obj)):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            yield from _leaves(value, path + (f.name,))
        else:
            yield path + (f.name,), f, value


def test_gate_steps_is_more_than_0_and_at_most_1(tmp_path: Path) -> None:
    for bad in (2.0, 0, 1.01):
        errors = errors_of(f"player:\n  gate_steps: {bad}\n", tmp_path)
        assert errors == [f"config.yaml:2 player.gate_steps: {cfg._fmt_num(bad)} is not in (0, 1] "
                          "(more than 0, at most 1)"]
    for good in (0.01, 1):
        assert loads(f"player: {{gate_steps: {good}}}\n").engine_settings().gate == good


def test_every_value_the_schema_allows_is_allowed_by_the_core(tmp_path: Path) -> None:
    """Each ranged number at both ends of its range: if the file checks OK, the core's own
    EngineSettings, Controls and clock take it too (a config that checks OK must start)."""
    import yaml
    from appliance.core.clock import ClockSwitch
    tried = 0
    for path, f, default in _leaves(Config()):
        rng = f.metadata.get("range")
        if rng is None or f.metadata.get("length") or isinstance(default, (dict, tuple)):
            continue
        if f.name == "seed" or default is None or path[0] == "gpio":
            continue   # pins and channels are the panel's, not the core's
        ends = [rng[1]] if f.metadata.get("above") else [rng[0], rng[1]]
        for end in ends:
            value = type(default)(end)
            doc: dict = {}
            node = doc
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value
            config = loads(yaml.safe_dump(doc))
            config.engine_settings()
            config.controls()
            ClockSwitch(config.tempo.clock, config.tempo.bpm)
            tried += 1
    assert tried > 20


def test_a_value_the_core_refuses_is_one_problem_at_its_key(tmp_path: Path, monkeypatch) -> None:
    """Should the core ever refuse what the schema lets through, load() says so at the key
    (and config check fails) instead of the service failing to start."""
    def refuse(self):
        raise ValueError("gate must be in (0, 1] steps")
    monkeypatch.setattr(Config, "engine_settings", refuse)
    errors = errors_of("# the box\nplayer:\n  channel: 3\n  gate_steps: 0.9\n", tmp_path)
    assert errors == ["config.yaml:4 player.gate_steps: gate must be in (0, 1] steps"]
    monkeypatch.undo()

    def refuse_controls(self):
        raise ValueError("density 2 is not in 0..1")
    monkeypatch.setattr(Config, "controls", refuse_controls)
    errors = errors_of("generator:\n  density: 1\n", tmp_path)
    assert errors == ["config.yaml:2 generator.density: density 2 is not in 0..1"]


def test_null_leds_and_knobs_mean_none(tmp_path: Path) -> None:
    none = cfg.LedsConfig(beat=None, freeze=None, activity=None)
    assert loads("gpio:\n  leds: null\n").gpio.leds == none
    assert loads("gpio:\n  leds:\n").gpio.leds == none
    no_knobs = loads("gpio:\n  knobs: null\n").gpio.knobs
    assert all(getattr(no_knobs, name) is None for name in cfg.KNOBS)
    assert loads("gpio:\n  knobs:\n").gpio.knobs == no_knobs
    assert loads("gpio:\n  buttons: null\n").gpio.buttons == {}
    # with no LEDs, their default pins are free for buttons
    assert loads("gpio:\n  leds: null\n  buttons: {freeze: 5}\n").gpio.buttons == {"freeze": 5}


def test_two_pots_on_one_mcp3008_channel_are_refused(tmp_path: Path) -> None:
    errors = errors_of("gpio:\n  knobs:\n    density: {mcp3008: 0}\n    variation: {mcp3008: 0}\n",
                       tmp_path)
    assert errors == ["config.yaml:4 gpio.knobs.variation.mcp3008: MCP3008 channel 0 is already "
                      "used by gpio.knobs.density.mcp3008"]
    # against a default knob the error is at the knob the user wrote, naming the default
    errors = errors_of("gpio:\n  knobs:\n    velocity_scale:\n      mcp3008: 2\n", tmp_path)
    assert errors == ["config.yaml:4 gpio.knobs.velocity_scale.mcp3008: MCP3008 channel 2 is "
                      "already used by gpio.knobs.tempo.mcp3008 (a default; give it another "
                      "value, or null to leave it out)"]


def test_a_clash_with_a_default_is_reported_where_the_user_wrote(tmp_path: Path) -> None:
    errors = errors_of("log_level: info\ngpio:\n  buttons: {freeze: 5}\n", tmp_path)
    assert errors == ["config.yaml:3 gpio.buttons.freeze: GPIO5 is already used by gpio.leds.beat "
                      "(a default; give it another value, or null to leave it out)"]
    errors = errors_of("gpio:\n  leds:\n    activity: 17\n", tmp_path)
    assert errors == ["config.yaml:3 gpio.leds.activity: GPIO17 is already used by "
                      "gpio.buttons.freeze (a default button; the buttons you list under "
                      "gpio.buttons replace all the defaults)"]
    errors = errors_of("gpio:\n  knobs:\n    velocity_scale: {encoder: [6, 26]}\n", tmp_path)
    assert errors[0].startswith("config.yaml:3 gpio.knobs.velocity_scale.encoder: GPIO6 is "
                                "already used by gpio.leds.freeze (a default")
    # both written: at the later one, as before
    errors = errors_of("gpio:\n  leds: {beat: 20}\n  buttons: {tap: 20}\n", tmp_path)
    assert errors == ["config.yaml:2 gpio.leds.beat: GPIO20 is already used by gpio.buttons.tap"]


def test_spi_is_spidev0_only_and_the_defaults_fit_it(tmp_path: Path) -> None:
    errors = errors_of("gpio:\n  spi_port: 1\n", tmp_path)
    assert len(errors) == 1 and errors[0].startswith("config.yaml:2 gpio.spi_port: 1 is not allowed; only 0")
    assert loads("gpio: {spi_device: 1}\n").gpio.spi_device == 1
    rules = (ROOT / "firmware_config" / "99-groovebox.rules").read_text()
    assert 'KERNEL=="spidev0.[01]"' in rules
    # the default panel keeps off SPI0 and the UART, with DIN MIDI on or off
    defaults = cfg.GpioConfig()
    pins = {pin for pin, _ in cfg.gpio_claims(defaults)}
    assert not pins & set(cfg.SPI0_PINS) and not pins & set(cfg.UART_PINS)
    assert loads("din: {enabled: true}\n").din.enabled


def test_start_keys_are_checked_with_a_clear_error(tmp_path: Path) -> None:
    assert Config().start.mode == "first-note", "the stage default: wait for the player"
    config = loads("start: {mode: count-in, count_in_notes: [36], count_in_beats: 4}\n")
    settings = config.start_settings()
    assert (settings.mode, settings.count_in_notes, settings.count_in_beats) == ("count-in", (36,), 4)
    assert loads("tempo: {clock: external}\n").start_settings().mode == "now", \
        "an external clock's Start starts the box"
    errors = errors_of("start:\n  mode: later\n", tmp_path)
    assert len(errors) == 1 and "config.yaml:2 start.mode" in errors[0] and "count-in" in errors[0]
    errors = errors_of("start: {count_in_beats: 12}\n", tmp_path)
    assert len(errors) == 1 and "start.count_in_beats" in errors[0] and "2..8" in errors[0]
    errors = errors_of("start: {mode: count-in, count_in_notes: [36]}\n"
                       "midi_map: {notes: {36: freeze}}\n", tmp_path)
    assert len(errors) == 1 and "start.count_in_notes" in errors[0] and "freeze" in errors[0]


# --- bounds (issue 13): every list and string has a limit and one short line when past it ----

def test_a_huge_list_is_one_short_line(tmp_path: Path) -> None:
    patterns = "".join(f"    - keys{i}\n" for i in range(100_000))          # 1.6 MB
    problems = errors_of(f"midi:\n  inputs:\n{patterns}", tmp_path)
    assert len(problems) == 1 and len(problems[0]) < 200 and "MiB" in problems[0]
    patterns = "".join(f"    - keys{i}\n" for i in range(5_000))
    problems = errors_of(f"midi:\n  inputs:\n{patterns}", tmp_path)
    assert len(problems) == 1 and len(problems[0]) < 200
    assert "midi.inputs" in problems[0] and "5000" in problems[0]
    bad = "".join("    - [1, 2]\n" for _ in range(5_000))
    problems = errors_of(f"midi:\n  outputs:\n{bad}", tmp_path)
    assert len(problems) == 1 and len(problems[0]) < 200
    many = "".join(f"    {i}: freeze\n" for i in range(5_000))
    problems = errors_of(f"midi_map:\n  notes:\n{many}", tmp_path)
    assert sum(len(p) for p in problems) < 2000


def test_many_small_mistakes_are_capped(tmp_path: Path) -> None:
    bad = "".join(f"    - {i}\n" for i in range(60))       # numbers, not text
    problems = errors_of(f"midi:\n  inputs:\n{bad}", tmp_path)
    assert 1 <= len(problems) <= 21 and sum(len(p) for p in problems) < 4000


def _leaf_keys(sections: tuple[str, ...]) -> dict[str, list[str]]:
    """Each section's keys that hold a number or a switch (a word there is a problem)."""
    from dataclasses import fields
    from appliance.box.config import Config
    config = Config()
    return {section: [f.name for f in fields(getattr(config, section))
                      if isinstance(getattr(getattr(config, section), f.name), (bool, int, float))]
            for section in sections}


def test_check_counts_every_problem_not_only_those_it_prints(tmp_path: Path, capsys) -> None:
    """A stage tech's review: 20 problems printed, "... and 65 more", then "21 problem(s)"."""
    from appliance.box.config import check_main
    sections = ("generator", "tempo", "loop", "player", "din")
    path = tmp_path / "config.yaml"
    path.write_text("".join(f"{section}:\n" + "".join(f"  {key}: fast\n" for key in keys)
                            for section, keys in _leaf_keys(sections).items()))
    assert check_main([str(path)]) == 1
    err = capsys.readouterr().err
    more = int(err.split("... and ")[1].split(" more")[0])
    assert f": {20 + more} problem(s)" in err, err[-300:]


def test_long_strings_are_refused_where_they_would_fail_later(tmp_path: Path) -> None:
    problems = errors_of(f"midi:\n  client_name: {'x' * 1000}\n", tmp_path)
    assert len(problems) == 1 and "midi.client_name" in problems[0] and len(problems[0]) < 200
    assert errors_of("midi:\n  client_name: 'drums:left'\n", tmp_path)
    assert errors_of("midi:\n  client_name: ''\n", tmp_path)
    assert load_text(tmp_path, "midi:\n  client_name: groovebox-2\n").midi.client_name == "groovebox-2"
    problems = errors_of(f"model:\n  dir: /{'d' * 20000}\n", tmp_path)
    assert len(problems) == 1 and len(problems[0]) < 200
    problems = errors_of(f"midi:\n  inputs: ['{'k' * 5000}']\n", tmp_path)
    assert len(problems) == 1 and len(problems[0]) < 200


def load_text(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "ok.yaml"
    path.write_text(text)
    return load(path)


def test_non_utf8_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"tempo:\n  bpm: 120\nmidi:\n  client_name: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert len(info.value.problems) == 1
    assert f"{path}:4" in info.value.problems[0] and "UTF-8" in info.value.problems[0]


def test_deeply_nested_yaml_is_one_line(tmp_path: Path) -> None:
    problems = errors_of("midi:\n  inputs: " + "[" * 50_000 + "]" * 50_000 + "\n", tmp_path)
    assert len(problems) == 1 and len(problems[0]) < 200
