"""Which machine produced a figure: CPU flags and versions, and the summary's reference comparison."""

from __future__ import annotations

from pathlib import Path

from reverso.machine import cpu_flags, machine_info, same_machine
from reverso.summary import compare_with_reference, lock_drift


def test_cpu_flags_keep_the_kernel_relevant_ones(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 amx_tile\n")
    assert cpu_flags(cpuinfo) == ["avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"]
    assert cpu_flags(tmp_path / "missing") == []


def test_machine_info_records_versions_of_the_stack() -> None:
    info = machine_info()
    assert info["cpus"] >= 1 and {"torch", "openvino"} <= set(info["versions"])


def test_same_machine_compares_flags_and_versions() -> None:
    avx512 = {"cpu_flags": ["avx2", "avx512f"], "versions": {"torch": "2.13.0"}}
    assert same_machine(avx512, dict(avx512)) is True
    assert same_machine(avx512, {"cpu_flags": ["avx2"], "versions": {"torch": "2.13.0"}}) is False
    assert same_machine(avx512, {**avx512, "versions": {"torch": "2.14.1"}}) is False
    assert same_machine(avx512, {}) is None


def _eval(policy: float, machine: dict | None) -> dict:
    ci = {"multi_if.average": {"mean": 0.30, "ci_low": 0.20, "ci_high": 0.40, "n": 8, "confidence": 0.95}}
    return {"policy": {"multi_if": {"average": policy}}, "ci": {"policy": ci},
            **({"machine": machine} if machine else {})}


def test_summary_judges_a_run_against_the_reference_ci_and_names_a_machine_change() -> None:
    here = {"cpu_flags": ["avx2", "avx512f"], "versions": {"openvino": "2026.4.1"}}
    there = {"cpu_flags": ["avx2"], "versions": {"openvino": "2026.4.1"}}
    same = compare_with_reference(_eval(0.35, here), _eval(0.30, here))
    assert "this kind of machine" in same[0] and "inside its 95% CI" in same[1]
    moved = compare_with_reference(_eval(0.55, here), _eval(0.30, there))
    assert "another machine" in moved[0] and "OUTSIDE its 95% CI" in moved[1]
    assert "records no machine" in compare_with_reference(_eval(0.3, here), _eval(0.3, None))[0]
    assert compare_with_reference(_eval(0.3, here), {}) == []


def _lock(beta: float, train_md5: str) -> dict:
    stage = {"deps": [{"path": "data/pairs", "md5": "d"}, {"path": "src/reverso/train", "md5": train_md5}],
             "params": {"params.yaml": {"train": {"beta": beta}}}}
    return {"stages": {"collect": {"deps": [{"path": "src/reverso/collect", "md5": "c"}]}, "train": stage}}


def test_summary_says_when_the_reference_run_had_other_params_or_code() -> None:
    assert lock_drift(_lock(0.1, "a"), _lock(0.1, "a")) == "reference: this run used the committed run's params and code"
    params = lock_drift(_lock(0.1, "a"), _lock(0.2, "a"))
    assert "params differ in train" in params and "code differs" not in params and "make bench-pipeline" in params
    both = lock_drift(_lock(0.1, "a"), _lock(0.2, "b"))
    assert "params differ in train" in both and "code differs in train" in both and "collect" not in both
    assert lock_drift({}, _lock(0.1, "a")) is None


def test_the_committed_reference_run_is_the_current_defaults_run() -> None:
    """Whoever changes a default remakes the reference run (`make bench-pipeline`) in the same change."""
    import yaml

    repo = Path(__file__).resolve().parents[1]
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    stages = yaml.safe_load((repo / "dvc.lock").read_text(encoding="utf-8"))["stages"]
    stale = []
    for name, stage in stages.items():
        for section, value in (stage.get("params") or {}).get("params.yaml", {}).items():
            node = params
            for key in section.split("."):
                node = node.get(key) if isinstance(node, dict) else None
            if node != value:
                stale.append(f"{name}: {section}")
    assert not stale, f"dvc.lock's params differ from params.yaml ({stale}): run `make bench-pipeline` and commit"
