"""Smoke training on a handful of real GMD windows: one epoch, resume, export (fp32 + int8),
parity, and the exported model loaded and played through appliance.core.generator."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is in the train extra (make .venv/.dev installs it)")

from appliance.core.generator import Controls, Generator  # noqa: E402
from appliance.core.groove import STEPS, VOICES, Groove, Pattern  # noqa: E402
from appliance.core.model_files import MODEL_FILES  # noqa: E402
from training import dataset as ds  # noqa: E402
from training import export as ex  # noqa: E402
from training import frontier, humanize, soup  # noqa: E402
from training import train as tr  # noqa: E402

TINY = ["--d-model", "32", "--n-heads", "2", "--n-layers", "1", "--d-ff", "64", "--latent-size", "16",
        "--batch-size", "32", "--limit", "96", "--val-limit", "64", "--threads", "1", "--seed", "5"]


def _need_gmd() -> None:
    if not (ds.gmd_dir() / "info.csv").is_file():
        pytest.skip(f"GMD_DIR {ds.gmd_dir()} is missing: the smoke training needs the Groove MIDI Dataset")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _need_gmd()
    out = tmp_path_factory.mktemp("smoke-run")
    tr.main(["--out", str(out), "--epochs", "1", *TINY])
    return out


@pytest.fixture(scope="module")
def smoke_model(smoke_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("smoke-model")
    val = ds.load_split("validation").subset(64)
    ex.export(smoke_run / "best.pt", out, name="smoke", val=val)
    return out


def test_one_epoch_writes_checkpoints_and_history(smoke_run: Path) -> None:
    assert (smoke_run / "last.pt").is_file() and (smoke_run / "best.pt").is_file()
    rows = [json.loads(line) for line in (smoke_run / "history.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["epoch"] == 1
    for key in ("train_loss", "val_recon", "val_f1", "val_vel_mse", "val_off_mse"):
        assert np.isfinite(rows[0][key]), key
    assert 0.0 <= rows[0]["val_f1"] <= 1.0
    assert "epoch   1" in (smoke_run / "train.log").read_text()


def test_training_is_seeded(smoke_run: Path, tmp_path: Path) -> None:
    tr.main(["--out", str(tmp_path), "--epochs", "1", *TINY])
    a = torch.load(smoke_run / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "last.pt", weights_only=False)["model"]
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_the_same_command_resumes(smoke_run: Path, tmp_path: Path) -> None:
    import shutil
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    tr.main(["--out", str(run), "--epochs", "2", *TINY])
    rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    state = torch.load(run / "last.pt", weights_only=False)["state"]
    before = torch.load(smoke_run / "last.pt", weights_only=False)["state"]
    assert state["epoch"] == 2 and state["seconds"] > before["seconds"]  # time adds up over resumes


def test_resume_with_another_architecture_is_refused(smoke_run: Path, tmp_path: Path) -> None:
    import shutil
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    args = [a if a != "16" else "8" for a in TINY]  # another latent size
    with pytest.raises(SystemExit, match="use --fresh"):
        tr.main(["--out", str(run), "--epochs", "2", *args])


def test_export_writes_the_contract(smoke_model: Path) -> None:
    import onnx
    for name in MODEL_FILES:
        assert (smoke_model / name).is_file(), name
    card = json.loads((smoke_model / "model.json").read_text())
    assert card["latent_size"] == 16 and card["steps"] == STEPS
    assert card["voices"][0] == "kick" and card["notes"] == [36, 38, 42, 46, 43, 47, 50, 49, 51]
    assert len(card["thresholds"]) == 9 and all(0 < t < 1 for t in card["thresholds"])
    for key in ("data", "command", "commit", "epochs", "seconds"):
        assert key in card["training"], key
    assert card["metrics"]["parity"]["int8_f1_drop"] <= 0.01
    for part, inputs, outputs in (("encoder", ["groove"], ["mu", "logvar"]),
                                  ("decoder", ["z"], ["hits", "velocities", "offsets"])):
        for suffix in (".onnx", ".int8.onnx"):
            m = onnx.load(str(smoke_model / f"{part}{suffix}"))
            assert [i.name for i in m.graph.input] == inputs
            assert [o.name for o in m.graph.output] == outputs
            assert max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) >= 17
            assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    int8_ops = {n.op_type for n in onnx.load(str(smoke_model / "decoder.int8.onnx")).graph.node}
    assert int8_ops & {"MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul"}, int8_ops


def test_exported_model_has_a_dynamic_batch(smoke_model: Path) -> None:
    from training.onnx_model import OnnxModel
    m = OnnxModel(smoke_model, "int8")
    mu, logvar = m.encode(np.zeros((5, STEPS, 3), np.float32))
    assert mu.shape == logvar.shape == (5, 16)
    hits, vel, off = m.decode(mu)
    assert hits.shape == vel.shape == off.shape == (5, STEPS, 9)
    assert hits.min() >= 0 and hits.max() <= 1 and vel.min() >= 0 and vel.max() <= 1
    assert off.min() >= -0.5 and off.max() <= 0.5


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_the_generator_plays_the_exported_model(smoke_model: Path, precision: str) -> None:
    gen = Generator(smoke_model, precision=precision, seed=3)
    assert gen.latent_size == 16
    val = ds.load_split("validation")
    pattern = gen.generate(Groove(val.grooves[0]), Controls(), gen.new_eps())
    assert isinstance(pattern, Pattern)
    loud = gen.generate(Groove(val.grooves[0]), Controls(density=1.0), np.zeros(16, np.float32))
    quiet = gen.generate(Groove(val.grooves[0]), Controls(density=0.0), np.zeros(16, np.float32))
    assert loud.hits >= quiet.hits
    prior = gen.generate(Groove.empty(), Controls(), gen.new_eps(), prior=True)
    assert isinstance(prior, Pattern)


def test_evaluate_reports_model_and_baselines(smoke_model: Path) -> None:
    from training.evaluate import evaluate, markdown
    results = evaluate(smoke_model, ds.load_split("validation").subset(48))
    for precision in ("fp32", "int8"):
        r = results[precision]
        assert r["windows"] == 48
        assert 0.0 <= r["hit"]["f1"] <= 1.0 and set(r["f1_per_voice"]) == set(json.loads(
            (smoke_model / "model.json").read_text())["voices"])
        assert r["baselines"]["silence"]["f1"] == 0.0
        assert "copy_groove" in r["baselines"]
    table = markdown(results)
    assert "copy-the-groove" in table and "silence" in table and "model int8" in table


def test_benchmark_prints_latency_and_size(smoke_model: Path, capsys: pytest.CaptureFixture) -> None:
    from benchmarks import model as bench
    bench.main([str(smoke_model), "--runs", "20"])
    out = capsys.readouterr().out
    assert "int8" in out and "fp32" in out and "p50 ms" in out and "MB" in out
    assert "a whole generation" in out and "two hands / one hand" in out


def test_training_on_a_missing_gmd_dir_names_it(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"training: GMD_DIR .*nowhere does not exist"):
        tr.main(["--out", str(tmp_path / "run"), "--gmd-dir", str(tmp_path / "nowhere"), *TINY])


def test_evaluate_without_a_model_names_the_directory(tmp_path: Path) -> None:
    from training import evaluate
    with pytest.raises(SystemExit, match="holds no model.json"):
        evaluate.main([str(tmp_path)])


def test_weight_average_is_shipped_and_resumes(tmp_path: Path) -> None:
    _need_gmd()
    run = tmp_path / "ema"
    tr.main(["--out", str(run), "--epochs", "1", "--ema", "0.99", *TINY])
    first = torch.load(run / "last.pt", weights_only=False)
    assert set(first["raw_model"]) == set(first["model"])
    assert any(not torch.equal(first["raw_model"][k], first["model"][k]) for k in first["model"])
    tr.main(["--out", str(run), "--epochs", "2", "--ema", "0.99", *TINY])
    second = torch.load(run / "last.pt", weights_only=False)
    assert second["state"]["epoch"] == 2 and second["state"]["step"] == 2 * first["state"]["step"]


def test_fine_tuning_starts_from_a_checkpoint(smoke_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "ft"
    tr.main(["--out", str(run), "--init", str(smoke_run / "best.pt"), "--epochs", "1", "--no-augment",
             "--lr", "1e-4", *TINY])
    ckpt = torch.load(run / "last.pt", weights_only=False)
    assert ckpt["init"]["checkpoint"] == str(smoke_run / "best.pt") and ckpt["init"]["epochs"] == 1
    assert ckpt["augment"] is None and ckpt["state"]["epoch"] == 1


def test_a_checkpoint_is_recovered_from_the_exported_graphs(smoke_run: Path, smoke_model: Path,
                                                             tmp_path: Path) -> None:
    from training import from_onnx
    ckpt_path = tmp_path / "recovered.pt"
    from_onnx.main([str(smoke_model), str(ckpt_path)])
    original, _ = ex.load_checkpoint(smoke_run / "best.pt")
    recovered, ckpt = ex.load_checkpoint(ckpt_path)
    for name, value in original.state_dict().items():
        torch.testing.assert_close(recovered.state_dict()[name], value, rtol=0, atol=1e-6)
    assert from_onnx.check(recovered, smoke_model) < 1e-4
    # and it fine-tunes like any checkpoint, here on simulated hands and keys, validated on hands
    run = tmp_path / "ft"
    tr.main(["--out", str(run), "--init", str(ckpt_path), "--epochs", "1", "--p-hands", "0.5", "--p-keys", "0.2",
             "--select-hands", "0.5", "--people-expression", "0", *TINY])
    ft = torch.load(run / "last.pt", weights_only=False)
    assert ft["augment"]["p_hands"] == 0.5 and ft["init"]["checkpoint"] == str(ckpt_path)
    row = json.loads((run / "history.jsonl").read_text().splitlines()[-1])
    assert 0.0 <= row["val_hands_f1"] <= 1.0
    assert ft["state"]["best"] == pytest.approx(0.5 * row["val_f1"] + 0.5 * row["val_hands_f1"])


def _tiny_outputs(n: int) -> tuple[dict, "torch.Tensor"]:
    """A tiny untrained model's outputs over n silent grooves, and n patterns with a hit every beat."""
    from training.model import GrooveVAE, ModelConfig
    torch.manual_seed(0)
    model = GrooveVAE(ModelConfig(d_model=32, n_heads=2, n_layers=1, d_ff=64, latent_size=16)).eval()
    pats = torch.zeros(n, STEPS, 9, 3)
    pats[:, ::4, 0] = torch.tensor([1.0, 0.9, 0.1])
    return model(torch.zeros(n, STEPS, 3), sample=False), pats


def test_expression_is_learnt_only_where_the_weight_says() -> None:
    from training.model import LossConfig, vae_loss
    out, pats = _tiny_outputs(4)
    full = vae_loss(out, pats, LossConfig(), 0.0)
    people = vae_loss(out, pats, LossConfig(), 0.0, torch.tensor([1.0, 1.0, 0.0, 0.0]))
    assert float(people["vel"]) == pytest.approx(float(full["vel"]) / 2, rel=1e-5)
    assert float(people["off"]) == pytest.approx(float(full["off"]) / 2, rel=1e-5)
    assert float(people["bce"]) == pytest.approx(float(full["bce"]))   # hits are learnt from every groove


def test_a_soup_interpolates_and_the_frontier_scores_it(smoke_run: Path, tmp_path: Path) -> None:
    tr.main(["--out", str(tmp_path / "ft"), "--init", str(smoke_run / "best.pt"), "--epochs", "1",
             "--p-hands", "0.5", *TINY])
    base, tuned = smoke_run / "best.pt", tmp_path / "ft" / "best.pt"
    for alpha in (0.0, 0.5, 1.0):
        soup.soup(base, tuned, alpha, tmp_path / f"soup{alpha}.pt")
    a = torch.load(base, weights_only=False)["model"]
    b = torch.load(tuned, weights_only=False)["model"]
    assert any(not torch.equal(a[k], b[k]) for k in a), "the fine-tune changed nothing"
    half = frontier.load(f"{base}+{tuned}@0.5").state_dict()
    for name in a:
        assert torch.equal(torch.load(tmp_path / "soup0.0.pt", weights_only=False)["model"][name], a[name])
        assert torch.equal(torch.load(tmp_path / "soup1.0.pt", weights_only=False)["model"][name], b[name])
        assert torch.allclose(half[name], 0.5 * (a[name] + b[name]), atol=1e-6), name
    # several fine-tunes are averaged first: base + (tuned, base)@1 is base + tuned@0.5
    soup.soup(base, [tuned, base], 1.0, tmp_path / "two.pt")
    two = torch.load(tmp_path / "two.pt", weights_only=False)
    assert two["soup"]["fine_tuned"] == f"{tuned},{base}"
    for name in a:
        assert torch.allclose(two["model"][name], half[name], atol=1e-6), name
    assert all(torch.allclose(frontier.load(f"{base}+{tuned},{base}@1.0").state_dict()[k], half[k], atol=1e-6)
               for k in a)
    val = ds.load_split("validation").subset(64)
    people = {"hands": humanize.human_set(val.patterns, "hands", humanize.SEED_VALIDATION)}
    figures = frontier.figures(frontier.load(str(tuned)), val, people)
    for key in ("drummers", "hands"):
        assert 0.0 < figures[key] <= 1.0, key
    assert np.isfinite(figures["offset_mse"]) and np.isfinite(figures["copy_offset_mse"])


def test_the_tempo_probe_starts_as_the_model_and_learns_the_tempo() -> None:
    """training/tempo_probe.py: the tempo enters through a zero-initialised layer, so the probe
    starts as the shipped model whatever the tempo; one step of training makes it matter, and
    each window's tempo comes from its own file in info.csv."""
    from dataclasses import asdict
    from training import tempo_probe as probe
    from training.model import GrooveVAE, ModelConfig, widen
    torch.manual_seed(0)
    small = ModelConfig(d_model=32, n_heads=2, n_layers=1, d_ff=64, latent_size=16)
    plain = GrooveVAE(small).eval()
    grooves = np.random.default_rng(1).random((4, STEPS, 3)).astype(np.float32)
    before = plain(probe.model_input(grooves, None), sample=False)["logits"]
    model = GrooveVAE(ModelConfig(**{**asdict(small), "groove_channels": 4})).eval()
    model.load_state_dict(widen(plain.state_dict(), asdict(small), model.cfg))
    slow, fast = (probe.model_input(grooves, np.full(4, t, np.float32)) for t in (-1.0, 1.0))
    assert slow.shape == (4, STEPS, 4)
    assert torch.allclose(model(slow, sample=False)["logits"], before, atol=1e-6)
    assert torch.allclose(model(fast, sample=False)["logits"], before, atol=1e-6)
    with torch.no_grad():
        model.encoder.embed.weight[:, 3] = 0.5
    assert not torch.allclose(model(slow, sample=False)["logits"], model(fast, sample=False)["logits"])
    _need_gmd()
    val = ds.load_split("validation")
    bpm = probe.file_bpm(val, None)
    assert len(bpm) == len(val) and 40 <= bpm.min() and bpm.max() <= 300
    names = [val.files[i] for i in val.file_ids]
    assert all(f"_{int(b)}_" in name for b, name in zip(bpm, names)), "GMD's file names carry their tempo"


def test_a_model_with_the_register_starts_as_the_one_without_and_hears_it() -> None:
    """model.widen: a 3-channel checkpoint's weights in a model with ``groove_channels`` 4 play
    the same whatever the register, until training makes it matter; a 3-channel model hears the
    first three channels of a 4-channel groove; the register probe feeds 4-channel grooves
    (blanked in ``blind`` of them)."""
    from dataclasses import asdict
    from training import register_probe as probe
    from training.model import GrooveVAE, ModelConfig, widen
    pats = np.zeros((8, STEPS, 9, 3), np.float32)
    pats[:, ::8, 0] = (1, 0.9, 0.0)     # a kick on every beat 1 and 3
    pats[:, 4::8, 1] = (1, 0.8, 0.0)    # a snare on 2 and 4
    split = ds.Split("train", pats, ds.flatten(pats), np.zeros(8, int), ["x.mid"])
    idx = np.arange(8)
    grooves, _ = probe.register_batch(split, 0.0)(idx, np.random.default_rng(1))
    assert grooves.shape == (8, STEPS, 4) and (grooves[..., 3] > 0).any()
    blank, _ = probe.register_batch(split, 1.0)(idx, np.random.default_rng(1))
    assert not blank[..., 3].any()
    heard = np.zeros((8, STEPS), np.float32)
    heard[:, ::8], heard[:, 4::8] = 1.0, -1.0          # the kick low, the snare high (known)
    np.testing.assert_array_equal(split.inputs[..., 3], heard)
    torch.manual_seed(0)
    small = ModelConfig(d_model=32, n_heads=2, n_layers=1, d_ff=64, latent_size=16)
    plain = GrooveVAE(small).eval()
    before = plain(grooves[..., :3], sample=False)["logits"]
    assert torch.equal(plain(grooves, sample=False)["logits"], before)      # hears its three channels
    wide_cfg = ModelConfig(**{**asdict(small), "groove_channels": 4})
    wide = GrooveVAE(wide_cfg).eval()
    wide.load_state_dict(widen(plain.state_dict(), asdict(small), wide_cfg))
    assert torch.allclose(wide(grooves, sample=False)["logits"], before, atol=1e-6)
    assert torch.allclose(wide(blank, sample=False)["logits"], before, atol=1e-6)
    with torch.no_grad():
        wide.encoder.embed.weight[:, 3] = 0.5
    assert not torch.allclose(wide(grooves, sample=False)["logits"], wide(blank, sample=False)["logits"])
    with pytest.raises(ValueError):        # any other change of architecture is refused
        widen(plain.state_dict(), asdict(small), ModelConfig(**{**asdict(wide_cfg), "d_model": 64}))


def test_a_soup_widens_a_base_without_the_register(tmp_path: Path) -> None:
    """training/soup.py: a 3-channel base under a 4-channel fine-tune is widened first, so α 0 is
    the base itself (hearing the register not at all) and α 1 the fine-tune."""
    from dataclasses import asdict
    from training.model import GrooveVAE, ModelConfig
    torch.manual_seed(0)
    small = ModelConfig(d_model=32, n_heads=2, n_layers=1, d_ff=64, latent_size=16)
    wide_cfg = ModelConfig(**{**asdict(small), "groove_channels": 4})
    plain, wide = GrooveVAE(small), GrooveVAE(wide_cfg)
    torch.save({"model": plain.state_dict(), "model_config": asdict(small)}, tmp_path / "base.pt")
    torch.save({"model": wide.state_dict(), "model_config": asdict(wide_cfg)}, tmp_path / "tuned.pt")
    for alpha in (0.0, 1.0):
        weights, _ = soup.mix(tmp_path / "base.pt", [tmp_path / "tuned.pt"], alpha)
        embed = weights["encoder.embed.weight"]
        assert embed.shape == (32, 4)
        if alpha == 0.0:
            assert torch.equal(embed[:, :3], plain.state_dict()["encoder.embed.weight"]) and not embed[:, 3].any()
        else:
            assert torch.equal(embed, wide.state_dict()["encoder.embed.weight"])
    torch.save({"model": GrooveVAE(ModelConfig(**{**asdict(small), "d_model": 64, "n_heads": 2})).state_dict(),
                "model_config": {**asdict(small), "d_model": 64}}, tmp_path / "other.pt")
    with pytest.raises(SystemExit):
        soup.mix(tmp_path / "other.pt", [tmp_path / "tuned.pt"], 0.5)


def test_a_teacher_speaks_only_for_grooves_whose_register_is_unknown() -> None:
    """--teacher/--teach: the hit targets of a groove with its register all 0 mix in the teacher's
    probabilities (the model it replaces, heard with its own channels); the others stay the hits."""
    from training.model import GrooveVAE, ModelConfig
    torch.manual_seed(0)
    teacher = GrooveVAE(ModelConfig(d_model=32, n_heads=2, n_layers=1, d_ff=64, latent_size=16)).eval()
    pats = np.zeros((3, STEPS, 9, 3), np.float32)
    pats[:, ::4, 0] = (1.0, 0.9, 0.0)
    grooves = np.zeros((3, STEPS, 4), np.float32)
    grooves[:, ::4, :3] = (1.0, 0.8, 0.0)
    grooves[0, ::8, 3], grooves[0, 4::8, 3] = 1.0, -1.0        # known
    targets = tr._taught(teacher, grooves, pats, 0.25)
    assert targets is not None
    np.testing.assert_array_equal(targets[0].numpy(), pats[0, ..., 0])
    with torch.no_grad():
        taught = torch.sigmoid(teacher(torch.from_numpy(grooves[1:, :, :3]), sample=False)["logits"]).numpy()
    np.testing.assert_allclose(targets[1:].numpy(), 0.75 * pats[1:, ..., 0] + 0.25 * taught, atol=1e-6)
    assert tr._taught(None, grooves, pats, 0.25) is None and tr._taught(teacher, grooves, pats, 0.0) is None


def test_an_anchor_pulls_z_towards_the_teachers_on_the_same_groove() -> None:
    """--anchor: Σ (mu − the teacher's mu on the groove's first channels)², mean over the batch: 0
    for the teacher's own z, the squared distance for another."""
    from training.model import GrooveVAE, ModelConfig
    torch.manual_seed(0)
    teacher = GrooveVAE(ModelConfig(d_model=32, n_heads=2, n_layers=1, d_ff=64, latent_size=16)).eval()
    grooves = np.zeros((2, STEPS, 4), np.float32)
    grooves[:, ::4, :3] = (1.0, 0.8, 0.0)
    grooves[:, ::8, 3] = 1.0
    with torch.no_grad():
        mu = teacher.encoder(torch.from_numpy(grooves[..., :3]))[0]
    assert float(tr._anchored(teacher, grooves, mu)) == pytest.approx(0.0, abs=1e-9)
    assert float(tr._anchored(teacher, grooves, mu + 0.5)) == pytest.approx(16 * 0.25, rel=1e-5)


def test_soft_hit_targets_replace_the_hits_in_the_hit_term_only() -> None:
    """vae_loss(hit_targets=...): the hit BCE learns the targets given (a teacher's); the hits'
    own targets give the same loss as none; velocity and offset still follow the hits."""
    from training.model import LossConfig, vae_loss
    out, pats = _tiny_outputs(2)
    plain = vae_loss(out, pats, LossConfig(), 0.0)
    same = vae_loss(out, pats, LossConfig(), 0.0, hit_targets=pats[..., 0])
    soft = vae_loss(out, pats, LossConfig(), 0.0, hit_targets=torch.full((2, STEPS, 9), 0.5))
    assert float(same["bce"]) == pytest.approx(float(plain["bce"]))
    assert float(soft["bce"]) != pytest.approx(float(plain["bce"]))
    assert float(soft["vel"]) == pytest.approx(float(plain["vel"])) and float(soft["off"]) == pytest.approx(float(plain["off"]))


def test_a_model_with_the_register_exports_and_says_how_it_hears_it(tmp_path: Path) -> None:
    """A 4-channel model passes export's parity checks (the graphs are checked before their card
    is written: today's signed register) and its card says "signed", which the box reads."""
    from training.onnx_model import OnnxModel
    _need_gmd()
    run = tmp_path / "run"
    tr.main(["--out", str(run), "--epochs", "1", "--groove-channels", "4", *TINY])
    out = tmp_path / "four"
    ex.export(run / "best.pt", out, name="four", val=ds.load_split("validation").subset(64))
    card = json.loads((out / "model.json").read_text())
    assert card["inputs"]["encoder"] == {"groove": ["N", STEPS, 4], "register": "signed"}
    assert OnnxModel(out).signed and Generator(out).signed


@pytest.fixture(scope="module")
def register_run(smoke_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A register encoder for the smoke run: one epoch, its decoder frozen."""
    run = tmp_path_factory.mktemp("register-run")
    tr.main(["--out", str(run), "--epochs", "1", "--groove-channels", "4", "--init", str(smoke_run / "best.pt"),
             "--freeze-decoder", *TINY])
    return run


def test_a_register_encoder_trains_on_the_frozen_decoder_and_exports_beside_the_model(
        smoke_run: Path, register_run: Path, tmp_path: Path) -> None:
    """--freeze-decoder --init: only the encoder learns, so the run's decoder is the model's to the
    bit; export --register writes its encoder as register.onnx, and the grooves whose register is
    known go through it (OnnxModel, as the box sends them), any other through the model's encoder."""
    from appliance.core.model_files import model_files
    from training.onnx_model import OnnxModel
    run = register_run
    base = torch.load(smoke_run / "best.pt", weights_only=False)["model"]
    trained = torch.load(run / "best.pt", weights_only=False)["model"]
    assert all(torch.equal(base[k], trained[k]) for k in base if k.startswith("decoder."))
    assert not torch.equal(base["encoder.to_latent.weight"], trained["encoder.to_latent.weight"])
    val = ds.load_split("validation").subset(64)
    out = tmp_path / "two"
    card = ex.export(smoke_run / "best.pt", out, name="two", val=val, register=run / "best.pt")
    assert card["inputs"]["encoder"]["groove"] == ["N", STEPS, 3]
    assert card["inputs"]["register"]["register"] == "signed" and "register" in card["training"]
    assert {"register.onnx", "register.int8.onnx"} <= set(model_files(out))
    both, plain = OnnxModel(out), OnnxModel(out)
    plain.register = None
    grooves = val.inputs.copy()
    grooves[::2, :, 3] = 0                  # every other groove with its register unknown
    known = grooves[..., 3].any(-1)
    assert known.any() and (~known).any()
    routed, alone = both.encode(grooves)[0], plain.encode(grooves)[0]
    assert np.allclose(routed[~known], alone[~known]) and not np.allclose(routed[known], alone[known])
    assert Generator(out).hears_register
    narrow = tmp_path / "narrow"           # --register-sigma 0.5: the register's σ halved, its mu as it was
    card = ex.export(smoke_run / "best.pt", narrow, name="narrow", val=val, register=run / "best.pt", register_sigma=0.5)
    assert card["training"]["register"]["sigma_scale"] == 0.5 and "sigma_scale" not in card["training"]
    (mu, logvar), (mu_half, logvar_half) = OnnxModel(out, "fp32").encode(grooves), OnnxModel(narrow, "fp32").encode(grooves)
    assert np.allclose(mu_half, mu, atol=1e-5) and np.allclose(logvar_half[~known], logvar[~known], atol=1e-5)
    assert np.allclose(logvar_half[known], logvar[known] + 2 * np.log(0.5), atol=1e-4)
    plain_model, register_model = ex.load_checkpoint(smoke_run / "best.pt")[0], ex.load_checkpoint(run / "best.pt")[0]
    bias = register_model.encoder.to_latent.bias.detach().clone()
    ratio = frontier.sigma_ratio(ex.with_register(plain_model, register_model), [grooves])
    assert frontier.sigma_ratio(ex.with_register(plain_model, register_model, 0.5), [grooves]) == pytest.approx(2 * ratio, rel=1e-4)
    assert torch.equal(register_model.encoder.to_latent.bias, bias)     # the run's own encoder untouched
    assert np.isnan(frontier.sigma_ratio(plain_model, [grooves]))
    assert np.isnan(frontier.sigma_ratio(ex.with_register(plain_model, register_model), [grooves[~known]]))
    with pytest.raises(ValueError, match="σ scale"):
        ex.with_register(ex.load_checkpoint(smoke_run / "best.pt")[0], ex.load_checkpoint(run / "best.pt")[0], 0.0)
    unfrozen = tmp_path / "unfrozen"       # a run whose decoder learnt too: refused
    tr.main(["--out", str(unfrozen), "--epochs", "1", "--groove-channels", "4", "--init", str(smoke_run / "best.pt"),
             *TINY])
    with pytest.raises(SystemExit, match="--freeze-decoder --init"):
        ex.export(smoke_run / "best.pt", tmp_path / "no", val=val, register=unfrozen / "best.pt")
    with pytest.raises(SystemExit, match="needs --init"):
        tr.main(["--out", str(tmp_path / "alone"), "--epochs", "1", "--freeze-decoder", *TINY])
    with pytest.raises(SystemExit, match="froze the decoder"):    # resumed without it: said, not a traceback
        tr.main(["--out", str(run), "--epochs", "2", "--groove-channels", "4", *TINY])
    ex.export(smoke_run / "best.pt", out, name="plain", val=val)   # the same directory, no register: none left
    assert not (out / "register.onnx").exists() and model_files(out) == MODEL_FILES
    assert OnnxModel(out).register is None and not Generator(out).hears_register


def test_a_register_encoder_beside_its_base_keeps_the_bases_fit_and_fits_only_its_own(
        smoke_run: Path, smoke_model: Path, register_run: Path, tmp_path: Path) -> None:
    """export --base: the card keeps the base model's thresholds, calibration, prior and styles for
    the encoder's grooves (so a one-handed part plays as the base plays it), tunes the register
    encoder's thresholds on the windows it hears, and calibrate fits only those (register_path);
    a base whose graphs are not the checkpoint's is one clear line."""
    from training import calibrate
    from training.onnx_model import known_register, paths, thresholds_for
    base = tmp_path / "base"
    shutil.copytree(smoke_model, base)
    fit = {"calibration": {"count_scale": 0.77, "velocity_sd": 0.1}, "styles": {},
           "prior": {"components": 1, "weights": [1.0]}}
    card = json.loads((base / "model.json").read_text())
    (base / "model.json").write_text(json.dumps({**card, **fit, "thresholds": [0.42] * len(VOICES)}))
    val = ds.load_split("validation").subset(64)
    out = tmp_path / "pair"
    card = ex.export(smoke_run / "best.pt", out, name="pair", val=val, register=register_run / "best.pt", base=base)
    assert card["thresholds"] == [0.42] * len(VOICES) and all(card[key] == value for key, value in fit.items())
    assert card["base"]["dir"] == str(base) and len(card["register_path"]["thresholds"]) == len(VOICES)
    assert paths(out) == (False, True) and paths(out, fitting=True) == (True,) and paths(base) == (False,)
    mixed = val.inputs.copy()
    mixed[::2, :, 3] = 0                    # the evaluation tools judge each groove at its encoder's thresholds
    each, heard = thresholds_for(card, mixed), known_register(mixed)
    assert heard.any() and (~heard).any() and each.shape == (len(mixed), 1, len(VOICES))
    assert np.allclose(each[heard], card["register_path"]["thresholds"]) and np.allclose(each[~heard], 0.42)
    assert np.allclose(thresholds_for(card, mixed[..., :3]), 0.42)
    grooves, patterns = calibrate.heard_by(val.inputs, val.patterns, register=True)
    assert known_register(grooves).all() and 0 < len(grooves) <= len(val)
    fitted, result = calibrate.calibrate(out, card, grooves, patterns, register=True, stored=False, refresh=False)
    calibrate.store(out / "model.json", card, fitted, result, ("drummers",), register=True)
    stored = json.loads((out / "model.json").read_text())
    assert stored["calibration"] == fit["calibration"]
    assert "register encoder" in stored["register_path"]["calibration"]["fitted_on"]
    assert Generator(out).register_fit is not None and Generator(out).fit.calibration.count_scale == 0.77
    other = tmp_path / "other"              # the graphs of another checkpoint: refused, one line
    shutil.copytree(base, other)
    (other / "encoder.onnx").write_bytes((other / "decoder.onnx").read_bytes())
    with pytest.raises(SystemExit, match="encoder.onnx"):
        ex.export(smoke_run / "best.pt", tmp_path / "no", val=val, register=register_run / "best.pt", base=other)
    with pytest.raises(SystemExit, match="--register"):
        ex.main([str(smoke_run / "best.pt"), str(tmp_path / "no"), "--base", str(base)])
    with pytest.raises(SystemExit, match="not the base"):      # into the base itself: refused, its card kept
        ex.export(smoke_run / "best.pt", base, val=val, register=register_run / "best.pt", base=base)
    assert json.loads((base / "model.json").read_text())["calibration"] == fit["calibration"]


def test_an_anchor_adds_the_distance_to_the_teachers_z_to_the_loss(smoke_run: Path, tmp_path: Path) -> None:
    """--teacher CKPT --anchor W: the same run with the anchor logs a larger training loss (the
    same batches, plus W · Σ (mu − the teacher's mu)²); a negligible anchor, which loads the
    teacher all the same, and --anchor 0 log the run without it."""
    teacher = ["--teacher", str(smoke_run / "best.pt")]
    losses = {}
    for anchor in ("0", "1e-9", "1"):
        tr.main(["--out", str(tmp_path / anchor), "--epochs", "1", *teacher, "--anchor", anchor, *TINY])
        losses[anchor] = json.loads((tmp_path / anchor / "history.jsonl").read_text().splitlines()[0])["train_loss"]
    plain = json.loads((smoke_run / "history.jsonl").read_text().splitlines()[0])["train_loss"]
    assert losses["0"] == pytest.approx(plain) and losses["1e-9"] == pytest.approx(plain, rel=1e-6)
    assert losses["1"] > plain + 1.0
    with pytest.raises(SystemExit, match="--anchor needs --teacher"):
        tr.main(["--out", str(tmp_path / "lonely"), "--epochs", "1", "--anchor", "1", *TINY])
