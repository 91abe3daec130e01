"""A MIDI loop, live on JACK: a drum machine with MIDI thru on sends everything the box plays
back to it. The box neither follows its own clock nor hears its own drums as the player's."""
from __future__ import annotations

import time

from appliance.box.echo import ARM
import pytest

from tests.jackserver import EchoDevice, ServiceProcess, cycle_frames, jack, wait_until  # noqa: F401


def looped_box(jack, tmp_path, model_dir, name: str, settings: str) -> tuple[ServiceProcess, EchoDevice]:
    """The service playing into an echo device ``name`` whose output it also listens to,
    started now (``settings``: more YAML lines), once both ports are connected."""
    echo = EchoDevice(jack, name)
    config = f"""
model: {{dir: {model_dir}, seed: 5}}
start: {{mode: now}}
midi: {{api: jack, client_name: gb-{name}, inputs: [{name}-out], outputs: ["{name}:in"]}}
gpio: {{enabled: false}}
state: {{dir: {tmp_path}/state}}
control: {{socket: {tmp_path}/control.sock}}
{settings}
"""
    service = ServiceProcess(jack, str(tmp_path), config)
    try:
        service.wait_ready()
        assert wait_until(lambda: service.status()["ports"]["inputs"] == [f"{name}-out:out"]
                          and service.status()["ports"]["outputs"] == [f"{name}:in"], 10)
    except BaseException:
        service.stop()
        echo.close()
        raise
    return service, echo


@pytest.mark.parametrize("frames", [64, 1024])
def test_a_box_that_sends_its_clock_does_not_follow_its_echo(jack, tmp_path, tiny_model_dir, frames):
    """tempo.clock auto + send_clock into a drum machine that echoes everything back (MIDI
    thru on): the box keeps its own clock at its own tempo, and says once why; also where a
    JACK cycle (1024 frames, 21 ms) is longer than a clock's period (17 ms at 150 BPM)."""
    with cycle_frames(jack, frames):
        box_ignores_its_clock_echo(jack, tmp_path, tiny_model_dir, f"clk-echo{frames}")


def box_ignores_its_clock_echo(jack, tmp_path, model_dir, name: str) -> None:
    service, echo = looped_box(jack, tmp_path, model_dir, name,
                               "tempo: {bpm: 150, clock: auto, send_clock: true}")
    try:
        assert wait_until(lambda: "sends its own" in service.log(), 20), service.log()[-2000:]
        time.sleep(6.0)                 # without the rule, the box took its echo for a master after 8 s
        status = service.status()
        assert status["clock_source"] == "internal" and status["bpm"] == 150, status["bpm"]
        assert service.log().count("sends its own") == 1
    finally:
        code = service.stop()
        echo.close()
    assert code == 0, service.log()[-2000:]


@pytest.mark.parametrize("frames", [64, 1024])
def test_the_box_does_not_hear_its_own_drums_back(jack, tmp_path, tiny_model_dir, frames):
    """Its drums come back note for note on the drum machine's output, which the box also
    listens to (as it does by default: every port in and out): once that input is seen to echo
    them, they are left out of the groove, with a warning line (rate-limited). Also on a JACK
    server with a desktop's large buffer (1024 frames, 21 ms cycles), where each echo comes
    back as late as the cycle the drums went out in."""
    with cycle_frames(jack, frames):
        box_hears_its_echo_once(jack, tmp_path, tiny_model_dir, f"thru{frames}")


def box_hears_its_echo_once(jack, tmp_path, model_dir, name: str) -> None:
    service, echo = looped_box(jack, tmp_path, model_dir, name,
                               "generator: {density: 0.8}\ntempo: {bpm: 160}")
    try:
        assert wait_until(lambda: service.status()["inputs_seen"] >= 40, 30), service.status()["inputs_seen"]
        status = service.status()
        # the first ARM - 1 are heard before the input is known to echo (without the rule: 8)
        assert status["engine"]["groove_hits"] <= ARM - 1, status["groove_grid"]
        assert wait_until(lambda: "hears its own drums" in service.log(), 10)
        assert service.status()["heard_back"] >= 10                # on the status too
        assert service.log().count("hears its own drums") <= 3     # rate-limited: the 1st, 10th, 100th ...
    finally:
        code = service.stop()
        echo.close()
    assert code == 0, service.log()[-2000:]
