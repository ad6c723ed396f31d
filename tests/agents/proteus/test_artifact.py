"""The artifact format: atomic writes, verified reads, and loading that never runs code."""

import base64
import io
import json
import shutil
import zipfile
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch
from gymnasium import spaces
from shared_fixtures import tiny_train_config

from agents.proteus import artifact as art
from agents.proteus.router import ProteusRouter
from agents.proteus.train import train
from proteus_env.policy_eval import batch_observations


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("trained") / "router"
    result = train(config=tiny_train_config(checkpoint_every=128), out_dir=out, seed=5, timesteps=256, n_envs=2)
    return out, result


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("checkpoints"))
    return target


def _resign(directory: Path, name: str) -> None:
    """Record the current checksum of ``name`` in the manifest (as an attacker who edits both would)."""
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["files"][name] = art.sha256_file(directory / name)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def _edit_json(directory: Path, name: str, edit) -> None:
    data = json.loads((directory / name).read_text())
    edit(data)
    (directory / name).write_text(json.dumps(data))
    _resign(directory, name)


def _observations(n: int = 64, k: int = 11) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return batch_observations(rng.random((n, k)), rng.random((n, k)), rng.random(n), 5 * rng.random(n))


class _Payload:
    """Unpickling this runs ``exec``: it writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


def _malicious_zip(source: Path, target: Path, marker: Path) -> None:
    """Copy SB3's ``model.zip`` with a code-running cloudpickle payload in its ``data`` entry."""
    with zipfile.ZipFile(source) as original:
        entries = {name: original.read(name) for name in original.namelist()}
    data = json.loads(entries["data"])
    data["policy_kwargs"] = {":type:": "<class 'dict'>",
                             ":serialized:": base64.b64encode(cloudpickle.dumps(_Payload(marker))).decode()}
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(target, "w") as crafted:
        for name, content in entries.items():
            crafted.writestr(name, content)


# ---------------------------------------------------------------------------- (a) no code runs
def test_a_crafted_model_zip_is_never_unpickled(trained, tmp_path):
    out, _ = trained
    from stable_baselines3.common.save_util import load_from_zip_file

    # The payload is live: SB3's own loader runs it.
    control = tmp_path / "control_marker"
    _malicious_zip(out / "model.zip", tmp_path / "control.zip", control)
    load_from_zip_file(tmp_path / "control.zip")
    assert control.is_file()

    marker = tmp_path / "marker"
    directory = _copy(out, tmp_path / "artifact")
    _malicious_zip(out / "model.zip", directory / "model.zip", marker)
    with pytest.raises(ValueError, match=r"model\.zip does not match its checksum"):
        ProteusRouter.load(directory)  # not loaded silently
    with pytest.raises(ValueError, match=r"model\.zip does not match its checksum"):
        train(config=tiny_train_config(), out_dir=tmp_path / "resumed", seed=5, timesteps=64, n_envs=2, resume=directory)
    assert not marker.exists()

    # Even with a manifest that vouches for it, the router never opens model.zip: it rebuilds the policy from JSON + weights.
    _resign(directory, "model.zip")
    router = ProteusRouter.load(directory)
    assert not marker.exists()
    np.testing.assert_array_equal(router.policy_actions(_observations()), ProteusRouter.load(out).policy_actions(_observations()))

    # A directory from before manifests (a pickled model.zip and nothing to verify it) is refused.
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    _malicious_zip(out / "model.zip", legacy / "model.zip", marker)
    with pytest.raises(FileNotFoundError, match=r"manifest\.json is missing.*retrain"):
        ProteusRouter.load(legacy)
    assert not marker.exists()


def test_unverified_checkpoints_are_refused(trained, tmp_path):
    out, _ = trained
    checkpoints = out / "checkpoints"
    recorded = json.loads((checkpoints / "checksums.json").read_text())["files"]
    assert set(recorded) == {p.name for p in checkpoints.glob("model_*_steps.zip")} and len(recorded) == 2
    first = sorted(recorded)[0]
    assert art.verify_checkpoint(checkpoints / first)["split_seed"] == 5
    copy = tmp_path / "checkpoints"
    shutil.copytree(checkpoints, copy)
    marker = tmp_path / "marker"
    _malicious_zip(checkpoints / first, copy / first, marker)
    with pytest.raises(ValueError, match="does not match its checksum"):
        train(config=tiny_train_config(), out_dir=tmp_path / "resumed", seed=5, timesteps=64, n_envs=2, resume=copy / first)
    (copy / "checksums.json").unlink()
    with pytest.raises(ValueError, match="no checksum record"):
        art.verify_checkpoint(copy / first)
    assert not marker.exists()


# ---------------------------------------------------------------------------- (b) tampering
def test_every_file_is_listed_and_checked(trained):
    out, _ = trained
    manifest = json.loads((out / "manifest.json").read_text())
    listed = set(manifest["files"])
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
    assert listed == {p for p in on_disk if not p.startswith("checkpoints/")}
    assert {"policy.pt", "policy.json", "model.zip", "lambda_table.json", "calibration.json", "routing_head.npz",
            "routing_head.json", "benchmark.json", "config.yaml", "summary.json"} <= listed
    assert manifest["format_version"] == art.FORMAT_VERSION and manifest["package_version"]
    assert manifest["benchmark"]["split_seed"] == 5 and manifest["benchmark"]["name"] == "synthetic"
    assert len(manifest["benchmark"]["models"]) == 11 and manifest["benchmark"]["embedding_dim"] == 32


def test_tampering_with_any_file_names_it(trained, tmp_path):
    out, _ = trained
    names = sorted(json.loads((out / "manifest.json").read_text())["files"])
    for i, name in enumerate(names):
        directory = _copy(out, tmp_path / f"t{i}")
        with open(directory / name, "ab") as handle:
            handle.write(b" ")
        with pytest.raises(ValueError, match=rf"{name}.* does not match its checksum"):
            art.read_artifact(directory)
        (directory / name).unlink()
        with pytest.raises(FileNotFoundError, match=rf"{name} is missing"):
            ProteusRouter.load(directory)


def test_a_broken_manifest_is_named(trained, tmp_path):
    out, _ = trained
    directory = _copy(out, tmp_path / "a")
    (directory / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"manifest\.json is not valid JSON"):
        ProteusRouter.load(directory)
    for edit, message in [
        (lambda m: m["files"].pop("policy.pt"), r"does not list policy\.pt"),
        (lambda m: m["files"].update({"../outside.txt": "0" * 64}), "bad file entry"),
        (lambda m: m.update(format_version=99), "newer"),
        (lambda m: m["benchmark"].update(models="gpt-4"), r"benchmark\.models"),
    ]:
        shutil.copy(out / "manifest.json", directory / "manifest.json")
        manifest = json.loads((directory / "manifest.json").read_text())
        edit(manifest)
        (directory / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(ValueError, match=message):
            art.read_artifact(directory)


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("lambda_table.json", lambda d: d.update(lambdas=[0.0, float("nan"), 1.0]), "finite"),
        ("lambda_table.json", lambda d: d.update(lambdas=[0.0, 11.0, 1.0]), r"\[0, 10\]"),
        ("lambda_table.json", lambda d: d.update(lambdas=[0.0, -1.0, 1.0]), r"\[0, 10\]"),
        ("lambda_table.json", lambda d: d.update(edges=[0.3, 0.5, 0.4, 0.8]), "strictly increasing"),
        ("lambda_table.json", lambda d: d.update(edges=[0.3, 0.8]), "strictly increasing"),
        ("calibration.json", lambda d: d.update(tau_inputs=d["tau_inputs"][::-1]), "increasing"),
        ("calibration.json", lambda d: d["tau_inputs"].__setitem__(-1, 1.5), r"\[0, 1\]"),
        ("calibration.json", lambda d: d.pop("n_val"), "n_val"),
        ("calibration.json", lambda d: d.update(val_accuracy=d["val_accuracy"][:-1]), "same length"),
        ("routing_head.json", lambda d: d.update(models=d["models"][::-1]), "differ from the manifest"),
        ("benchmark.json", lambda d: d.update(fingerprint="other"), "differs from the manifest"),
        ("benchmark.json", lambda d: d["env_kwargs"].update(split_seed=6), "split_seed"),
        ("policy.json", lambda d: d.update(policy_class="os.system"), "policy_class"),
        ("policy.json", lambda d: d["kwargs"].update(activation_fn="builtins.exec"), "activation_fn"),
        ("policy.json", lambda d: d["kwargs"].update(evil=1), "unknown policy arguments"),
        ("policy.json", lambda d: d["observation_space"]["spaces"]["p_hat"].update(shape=[5]), "p_hat"),
        ("policy.json", lambda d: d["kwargs"].update(net_arch={"pi": [8], "vf": [8]}), r"policy\.pt does not fit"),
    ],
)
def test_bad_values_are_named(trained, tmp_path, name, edit, message):
    out, _ = trained
    directory = _copy(out, tmp_path / "a")
    _edit_json(directory, name, edit)
    with pytest.raises(ValueError, match=message) as info:
        ProteusRouter.load(directory)
    named = "policy.pt" if "does not fit" in message else name
    assert str(directory / named) in str(info.value)


def test_malformed_json_is_named(trained, tmp_path):
    out, _ = trained
    for name in ("lambda_table.json", "calibration.json", "policy.json", "benchmark.json", "summary.json"):
        directory = _copy(out, tmp_path / name)
        (directory / name).write_text('{"lambdas": [1, 2,')
        _resign(directory, name)
        with pytest.raises(ValueError, match=rf"{name.replace('.', '[.]')} is not valid JSON"):
            art.read_artifact(directory)


def test_policy_weights_are_loaded_without_pickle(trained, tmp_path):
    out, _ = trained
    directory = _copy(out, tmp_path / "a")
    marker = tmp_path / "marker"
    torch.save({"weights": _Payload(marker)}, directory / "policy.pt")  # a pickle inside the torch file
    _resign(directory, "policy.pt")
    with pytest.raises(ValueError, match=r"policy\.pt is not a readable weights-only state dict"):
        ProteusRouter.load(directory)
    assert not marker.exists()


# ---------------------------------------------------------------------------- (c) round trip
def test_round_trip_gives_the_trained_models_actions(trained):
    out, result = trained
    router = ProteusRouter.load(out)
    policy = result.model.policy
    assert router.policy is not policy and type(router.policy) is type(policy)
    assert router.policy.observation_space == policy.observation_space and router.policy.action_space == policy.action_space
    saved, loaded = policy.state_dict(), router.policy.state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)
    obs = _observations()
    expected = result.model.predict(obs, deterministic=True)[0]
    np.testing.assert_allclose(router.policy_actions(obs), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(router.policy.predict(obs, deterministic=True)[0], expected, rtol=0, atol=0)
    assert not router.policy.training


def test_spaces_round_trip_through_json():
    space = spaces.Dict({"a": spaces.Box(0.0, 1.0, (3,), np.float32), "q": spaces.Box(-np.inf, np.inf, (2, 2), np.float64),
                         "l": spaces.Box(np.array([0.0], np.float32), np.array([10.0], np.float32), dtype=np.float32)})
    text = json.dumps(art.space_to_json(space), allow_nan=False)  # strict JSON: infinities as strings
    assert art.space_from_json(json.loads(text)) == space
    with pytest.raises(ValueError, match="Box or Dict"):
        art.space_to_json(spaces.Discrete(3))
    with pytest.raises(ValueError, match="dtype"):
        art.space_from_json({"type": "Box", "shape": [1], "dtype": "object", "low": [0], "high": [1]})


# ---------------------------------------------------------------------------- writing
def test_writing_is_atomic_and_keeps_foreign_entries(trained, tmp_path):
    out, result = trained
    loaded = art.read_artifact(out)
    target = tmp_path / "router"
    kwargs = dict(model=result.model, lambda_state=loaded.lambda_state, head=loaded.head, calibration=loaded.calibration,
                  benchmark=loaded.benchmark, identity=loaded.identity)
    art.write_artifact(target, **kwargs)
    (target / "checkpoints").mkdir()
    (target / "checkpoints" / "keep.txt").write_text("mine")
    (target / "tb").mkdir()
    (target / "notes.txt").write_text("mine too")
    with pytest.raises(ValueError, match="overwrite=True"):
        art.write_artifact(target, **kwargs)
    art.write_artifact(target, **kwargs, summary={"run": 2}, overwrite=True)
    assert json.loads((target / "summary.json").read_text()) == {"run": 2}
    assert (target / "checkpoints" / "keep.txt").read_text() == "mine" and (target / "tb").is_dir()
    assert (target / "notes.txt").read_text() == "mine too"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["router"]  # no staging or backup directory left behind
    assert art.read_artifact(target).summary == {"run": 2}
    with pytest.raises(NotADirectoryError):
        art.write_artifact(target / "notes.txt", **kwargs)


def test_a_failed_write_leaves_the_old_artifact(trained, tmp_path, monkeypatch):
    out, result = trained
    target = _copy(out, tmp_path / "router")
    before = (target / "manifest.json").read_text()
    loaded = art.read_artifact(target)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(loaded.calibration.__class__, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        art.write_artifact(target, model=result.model, lambda_state=loaded.lambda_state, head=loaded.head,
                           calibration=loaded.calibration, benchmark=loaded.benchmark, identity=loaded.identity, overwrite=True)
    assert (target / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["router"]


def test_the_artifact_api_for_evaluation(trained):
    out, _ = trained
    assert art.is_artifact(out) and not art.is_artifact(out / "checkpoints")
    loaded = art.read_artifact(out)
    assert loaded.split_seed == 5 and loaded.identity["env_kwargs"]["split_seed"] == 5
    assert loaded.config["seed"] == 5 and loaded.summary["timesteps"] >= 256
    assert loaded.models == list(loaded.head.models)
    assert loaded.load_encoder() is None  # the synthetic benchmark has no prompts
    assert loaded.verified_model_zip() == out / "model.zip"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        art.read_artifact(out / "missing")
    buffer = io.BytesIO(loaded.read_verified("policy.pt"))
    assert isinstance(torch.load(buffer, weights_only=True), dict)
