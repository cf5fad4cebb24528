"""Hostile checkpoint files end in a clear error, in bounded time and memory.

All crafted files of `tests.checkpoints.hostile` are loaded in one child
process, so that a crash (SIGSEGV from a deep hash) fails this test instead
of killing the test run.
"""

import copyreg
import os
import pickle

import numpy as np
import pytest

from keras_eca import checkpoints
from tests.checkpoints import hostile

# A safety net against hangs, far above the milliseconds they take.
_SECONDS = 60


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    results, crash = hostile.run_cases(
        hostile.CASES + [hostile.SHADOWING_CASE], str(folder)
    )
    assert crash is None, crash
    return results


@pytest.mark.parametrize("case", hostile.CASES, ids=lambda case: case.name)
def test_hostile_file_is_refused(reports, case):
    report = reports[case.name]

    assert report["error"] == case.error, report
    assert report["is_value_error"], report
    assert report["path"] in report["message"], report["message"]
    assert case.match in report["message"], report["message"]
    assert len(report["message"]) < 1500, report["message"]
    assert report["peak_bytes"] < case.peak_mib * 2**20, report
    assert report["seconds"] < _SECONDS, report


def test_ordered_dict_state_cannot_shadow_its_methods(reports):
    report = reports[hostile.SHADOWING_CASE.name]

    assert report["error"] == "", report["message"]
    assert report["loaded"] == {"w": [1.5, -2.0]}


class _Shell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_registered_copyreg_extension_is_refused(tmp_path):
    # With the extension registered and cached, pickle.loads would run
    # os.system: EXT opcodes skip find_class.
    marker = tmp_path / "pwned"
    code = 0xE12
    copyreg.add_extension(os.system.__module__, "system", code)
    try:
        data = pickle.dumps({"w": _Shell(marker)}, protocol=2)
        path = hostile.write_zip(tmp_path / "ext.pth", data)
        with pytest.raises(
            checkpoints.UnsafeCheckpointError, match="copyreg extension code"
        ):
            checkpoints.load_checkpoint(path)
    finally:
        copyreg.remove_extension(os.system.__module__, "system", code)
    assert not marker.exists()


def test_byte_budget_can_be_raised_for_trusted_files(tmp_path):
    # 2^25 floats (128 MiB) over one float: over the default budget of a
    # 600-byte file, within an explicit one.
    numel = 2**25
    path = hostile.write_zip(
        tmp_path / "expanded.pth",
        hostile.state_dict({"w": hostile.tensor("0", 1, (numel,), (0,))}),
        {"0": np.array([2.5], "<f4").tobytes()},
    )

    with pytest.raises(checkpoints.CheckpointTooLargeError, match="'w'"):
        checkpoints.load_checkpoint(path)
    with pytest.raises(checkpoints.CheckpointTooLargeError, match="max_bytes"):
        checkpoints.load_checkpoint(path, max_bytes=2**20)
    loaded = checkpoints.load_checkpoint(path, max_bytes=2**28)
    assert loaded["w"].shape == (numel,) and loaded["w"][-1] == 2.5


@pytest.mark.parametrize("max_bytes", [0, -1, 1.5, True, "1"])
def test_bad_max_bytes(tmp_path, max_bytes):
    path = tmp_path / "w.pth"
    checkpoints.save_state_dict_pth({"w": np.ones(2, "float32")}, path)
    with pytest.raises(ValueError, match="max_bytes"):
        checkpoints.load_checkpoint(path, max_bytes=max_bytes)


def test_small_expanded_tensor_within_the_slack_loads(tmp_path):
    # torch.save of `torch.zeros(1).expand(1000)` keeps one float.
    path = hostile.write_zip(
        tmp_path / "expand.pth",
        hostile.state_dict({"w": hostile.tensor("0", 1, (1000,), (0,))}),
        {"0": np.array([3.0], "<f4").tobytes()},
    )
    np.testing.assert_array_equal(
        checkpoints.load_checkpoint(path)["w"], np.full(1000, 3.0, "float32")
    )
