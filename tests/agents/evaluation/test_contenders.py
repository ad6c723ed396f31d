"""Who is evaluated: artifact discovery, the head check, baseline and PROTEUS contenders."""

import shutil

import numpy as np
import pytest

from agents.evaluation.contenders import (
    RouterArtifact,
    baseline_contenders,
    check_head_matches,
    find_artifacts,
    proteus_contenders,
)
from agents.evaluation.run import load_seed_benchmark
from proteus_env.routing_head import RoutingHead, fit_routing_head

SMALL = {"n_queries": 3000}


# ---------------------------------------------------------------------------- artifacts
def test_artifacts_are_found_in_a_parent_directory_with_their_seeds(tiny_routers):
    found = find_artifacts([tiny_routers])
    assert [a.seed for a in found] == [0, 1]
    assert all(a.benchmark == "synthetic" and a.benchmark_kwargs == SMALL for a in found)
    assert [a.seed for a in find_artifacts([tiny_routers / "seed1", tiny_routers / "seed0"])] == [0, 1]
    assert find_artifacts(tiny_routers / "seed1") == [RouterArtifact.read(tiny_routers / "seed1")]


def test_two_artifacts_of_one_seed_are_refused(tiny_routers, tmp_path):
    shutil.copytree(tiny_routers / "seed0", tmp_path / "copy")
    with pytest.raises(ValueError, match="split seed 0"):
        find_artifacts([tiny_routers / "seed0", tmp_path / "copy"])


def test_a_path_that_is_no_artifact_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory|does not exist"):
        find_artifacts([tmp_path / "missing"])
    with pytest.raises(FileNotFoundError, match="neither"):
        find_artifacts([tmp_path])
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "model.zip").write_bytes(b"")  # a router from before manifests: refused by name
    with pytest.raises(FileNotFoundError, match="manifest.json is missing.*before manifests"):
        find_artifacts([tmp_path])


def test_a_tampered_artifact_is_refused_naming_the_file(tiny_routers, tmp_path):
    target = tmp_path / "tampered"
    shutil.copytree(tiny_routers / "seed0", target)
    with np.load(target / "routing_head.npz") as arrays:
        values = dict(arrays)
    values["correct_weights"] = values["correct_weights"] + 0.01
    np.savez(target / "routing_head.npz", **values)
    with pytest.raises(ValueError, match=r"routing_head.npz does not match its checksum"):
        find_artifacts([target])


def test_the_head_check_names_the_mismatching_array(tiny_routers):
    bench = load_seed_benchmark("synthetic", 0, benchmark_kwargs=SMALL)
    saved = RoutingHead.load(tiny_routers / "seed0")
    fit = fit_routing_head(bench, seed=0, config=saved.config)
    check_head_matches(saved, fit, artifact=tiny_routers / "seed0", seed=0)  # the same head: no error
    other = fit_routing_head(load_seed_benchmark("synthetic", 1, benchmark_kwargs=SMALL), seed=1, config=saved.config)
    with pytest.raises(ValueError, match=r"seed0.*does not match.*split seed 1"):
        check_head_matches(saved, other, artifact=tiny_routers / "seed0", seed=1)


# ---------------------------------------------------------------------------- contenders
def test_baselines_appear_once_per_confidence_and_references_once(small_benchmark):
    fit = fit_routing_head(small_benchmark, seed=0)
    contenders = baseline_contenders(small_benchmark, fit, (None, 0.95), seed=0, predictive=False)
    calibrated = ("zero_router", "carrot", "omnirouter", "omnirouter_uncalibrated")
    assert list(contenders) == ["oracle", "best_fixed", "cheapest", "random", *calibrated,
                                *(f"{name}[confidence=0.95]" for name in calibrated)]
    carrot, confident = contenders["carrot"], contenders["carrot[confidence=0.95]"]
    assert (carrot.family, carrot.confidence, carrot.confidence_label) == ("carrot", None, "none")
    assert (confident.family, confident.confidence, confident.confidence_label) == ("carrot", 0.95, "0.95")
    oracle = contenders["oracle"]
    assert oracle.confidence_label == "n/a" and not oracle.tau_dependent and carrot.tau_dependent
    rows = small_benchmark.split_index("test")
    choice, mu = carrot.route(rows, 0.6)
    assert mu is None and choice.shape == rows.shape
    np.testing.assert_array_equal(choice, carrot.router.route(rows, 0.6))


def test_proteus_contenders_are_raw_and_calibrated_per_confidence(tiny_routers):
    artifact = RouterArtifact.read(tiny_routers / "seed0")
    bench = load_seed_benchmark("synthetic", 0, benchmark_kwargs=SMALL)
    fit = fit_routing_head(bench, seed=0, config=artifact.verified.head.config)
    contenders = proteus_contenders(artifact, bench, fit, (None, 0.95), seed=0)
    assert list(contenders) == ["proteus_raw", "proteus", "proteus[confidence=0.95]"]
    assert [c.confidence_label for c in contenders.values()] == ["n/a", "none", "0.95"]
    assert {c.kind for c in contenders.values()} == {"proteus"}
    rows = bench.split_index("test")[:50]
    choice, mu = contenders["proteus[confidence=0.95]"].route(rows, 0.6)
    assert choice.shape == rows.shape and choice.dtype == np.int64 and ((mu >= 0) & (mu <= 1)).all()
