"""Shared fixtures: the shipped model, a tiny plumbing model, a virtual-clock engine."""
from __future__ import annotations

from pathlib import Path

import pytest

from appliance.box.cli import default_model_dir
from appliance.core.engine import Engine, EngineSettings, VirtualExecutor
from appliance.core.generator import Controls, Generator
from appliance.core.transport import InternalClock

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The real trained model that ships in models/."""
    path = default_model_dir()
    assert (path / "model.json").is_file(), f"the shipped model is missing from {path}"
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests import tiny_model
    return tiny_model.build(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def _loaded_generator(model_dir: Path) -> Generator:
    return Generator(model_dir, seed=1)


@pytest.fixture
def generator(_loaded_generator: Generator) -> Generator:
    """The shipped model, loaded once, its noise started again from seed 1 for each test: what a
    test hears does not hang on which tests drew from it before (an added test once moved a
    later one's crash)."""
    _loaded_generator.reseed(1)
    return _loaded_generator


def make_engine(generator: Generator, bpm: float = 120.0, latency: float = 0.0,
                settings: EngineSettings = EngineSettings(), controls: Controls = Controls()) -> Engine:
    """An engine on a virtual clock (start 0.0); the caller drives engine.tick(t)."""
    return Engine(generator, InternalClock(bpm=bpm, start=0.0), settings, controls,
                  executor=VirtualExecutor(latency), clock=lambda: 0.0)


@pytest.fixture(autouse=True)
def _recorders_closed():
    """A live test that fails before its ``finally`` leaves a recorder's process open: closed
    here (not those of a wider fixture, set up before this one: a module's box keeps its own)."""
    import sys
    jackserver = sys.modules.get("tests.jackserver")
    before = set(map(id, jackserver.Recorder.left_open)) if jackserver is not None else set()
    yield
    jackserver = sys.modules.get("tests.jackserver")
    if jackserver is not None:
        jackserver.Recorder.close_left_open(keep=before)
