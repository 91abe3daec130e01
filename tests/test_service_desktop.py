"""`make run`'s config (examples/desktop.yaml): the box comes up with virtual ports on
whichever MIDI system is there, named as the docs say, waits for the first note, and a
keyboard connected to them starts the drums."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import mido

from tests.jackserver import REPO, NotifyListener, Player, Recorder, connect, jack, wait_until  # noqa: F401


def test_desktop_config_plays_through_its_virtual_ports(jack, tmp_path):
    # The example as shipped, with its relative paths pointing into a scratch copy of the tree.
    examples = tmp_path / "examples"
    examples.mkdir()
    shutil.copy(os.path.join(REPO, "examples", "desktop.yaml"), examples / "desktop.yaml")
    os.symlink(os.path.join(REPO, "models"), tmp_path / "models")
    notify = NotifyListener(str(tmp_path))
    env = jack.env()
    env.update(NOTIFY_SOCKET=notify.path, RUNTIME_DIRECTORY=str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    log = open(tmp_path / "service.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "appliance.box.cli", "run", "--config",
                             str(examples / "desktop.yaml")], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    keys = Player("desk-keys")
    synth = Recorder("desk-synth")
    try:
        assert notify.wait_for("READY=1", timeout=90), (tmp_path / "service.log").read_text()
        from appliance.box.control_socket import request
        status = request("status", tmp_path / "run" / "control.sock")["status"]
        ins, outs = status["ports"]["inputs"], status["ports"]["outputs"]
        virtual_in = next(p for p in ins if p.endswith("(virtual)")).split(" ")[0]
        virtual_out = next(p for p in outs if p.endswith("(virtual)")).split(" ")[0]
        # The names the README and examples/desktop.yaml give (JACK: the output has its own client).
        assert (virtual_in, virtual_out) == ("groovebox:in", "groovebox-out:out"), status["ports"]
        assert {"groovebox:in", "groovebox-out:out"} <= set(jack.ports())
        # outputs: [] means every output: the soft synth gets the drums without wiring.
        sock = tmp_path / "run" / "control.sock"
        assert wait_until(lambda: "desk-synth:in" in request(
            "status", sock)["status"]["ports"]["outputs"], 10)
        # The stage default: silent, and status says why, until the keyboard plays.
        assert "first note" in request("status", sock)["status"]["engine"]["waiting_for"]
        assert not synth.wait_for(lambda ev: any(m.type == "note_on" for _, m in ev), 1.0)
        # inputs: [] hears every keyboard, through the box's own input port (wiring it by
        # hand as well changes nothing).
        assert wait_until(lambda: "desk-keys:out" in request(
            "status", sock)["status"]["ports"]["inputs"], 10)
        connect(jack, "desk-keys:out", virtual_in)
        seen = request("status", sock)["status"]["inputs_seen"]
        keys.send(mido.Message("note_on", note=60, velocity=100))
        assert wait_until(lambda: request("status", sock)["status"]["inputs_seen"] >= seen + 1, 10)
        assert synth.wait_for(lambda ev: any(m.type == "note_on" for _, m in ev), 30)
        assert virtual_out
        assert (tmp_path / "out" / "state").is_dir()        # state under out/, as documented
    finally:
        proc.terminate()
        code = proc.wait(timeout=30)
        keys.close()
        synth.close()
        notify.close()
        log.close()
    text = (tmp_path / "service.log").read_text()
    assert code == 0, text[-2000:]
    assert "virtual MIDI ports open" in text
