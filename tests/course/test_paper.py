"""The paper's numbers live once, in ddim_edu.course.paper, under the key convention of the
benchmarks and results/ files; no notebook or benchmark keeps its own copy."""
import json
import re
from pathlib import Path

from ddim_edu.course.paper import TABLE1_CIFAR10_FID, TABLE1_STEPS, TABLE2_CIFAR10_MSE

ROOT = Path(__file__).resolve().parents[2]


def test_table1_rows_and_columns():
    assert list(TABLE1_CIFAR10_FID) == ["0", "0.2", "0.5", "1", "hat"]
    assert all(tuple(row) == TABLE1_STEPS == (10, 20, 50, 100, 1000) for row in TABLE1_CIFAR10_FID.values())
    # spot values of Table 1 (the corners of each row's range) guard against a slipped digit
    assert (TABLE1_CIFAR10_FID["0"][10], TABLE1_CIFAR10_FID["1"][10], TABLE1_CIFAR10_FID["hat"][10]) == (13.36, 41.07, 367.43)
    assert (TABLE1_CIFAR10_FID["0"][1000], TABLE1_CIFAR10_FID["hat"][1000]) == (4.04, 3.17)
    # the shape the course teaches: FID rises with η at every S ≤ 100
    for S in TABLE1_STEPS[:-1]:
        fids = [TABLE1_CIFAR10_FID[e][S] for e in ("0", "0.2", "0.5", "1", "hat")]
        assert fids == sorted(fids)


def test_table2():
    assert list(TABLE2_CIFAR10_MSE) == [10, 20, 50, 100, 200, 500, 1000]
    assert (TABLE2_CIFAR10_MSE[10], TABLE2_CIFAR10_MSE[20], TABLE2_CIFAR10_MSE[1000]) == (0.014, 0.0065, 0.0001)
    values = list(TABLE2_CIFAR10_MSE.values())
    assert values == sorted(values, reverse=True)


def test_results_files_use_the_same_keys():
    measured = json.loads((ROOT / "results" / "table1_mnist.json").read_text())
    etas = {re.match(r"eta=([^,]+),S=\d+$", k).group(1) for k in measured["fid"]}
    assert etas <= set(TABLE1_CIFAR10_FID)


def test_no_other_copy_in_code():
    """Code cells of the notebooks and the benchmark scripts read the numbers from the module."""
    copies = re.compile(r"13\.36|41\.07|367\.43|0\.0065")
    sources = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "benchmarks").glob("*.py")}
    for p in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(p.read_text(encoding="utf-8"))["cells"]
        sources[p.name] = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert [name for name, text in sources.items() if copies.search(text)] == []
