"""``backend_report`` (which backend each op can use here, and why not) and ``gankern info``."""

from __future__ import annotations

import json

import numpy
import pytest
import torch
from testutils import requires_triton_interpreter

import gankern
from gankern.cli import main
from gankern.ops import OP_BACKENDS, backend_report

NO_CUDA_ON_CPU = "inputs are on cpu, the CUDA backend needs CUDA tensors"


@requires_triton_interpreter
def test_backend_report_on_the_cpu_with_the_interpreter():
    report = backend_report(OP_BACKENDS, torch.device("cpu"))
    assert report == {
        op: {"cuda": NO_CUDA_ON_CPU, "triton": None, "ref": None}
        for op in ("bias_act", "upfirdn2d", "modulated_conv2d")
    }
    assert list(report) == list(OP_BACKENDS)


def test_backend_report_reasons(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    registries = {"only_triton": {"triton": object()}, "both": {"cuda": 1, "triton": 2}}
    report = backend_report(registries, torch.device("cpu"))
    no_interpreter = "inputs are on the CPU (Triton runs CPU tensors only with TRITON_INTERPRET=1)"
    assert report["only_triton"] == {
        "cuda": "not implemented for this op", "triton": no_interpreter, "ref": None,
    }
    assert report["both"] == {"cuda": NO_CUDA_ON_CPU, "triton": no_interpreter, "ref": None}
    meta = backend_report(registries, torch.device("meta"))["both"]
    assert meta["cuda"] == "inputs are on meta, the CUDA backend needs CUDA tensors"
    assert meta["triton"] == "inputs are on meta, Triton needs CUDA tensors"


@requires_triton_interpreter
def test_gankern_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["versions"]["gankern"] == gankern.__version__
    assert info["versions"]["torch"] == torch.__version__
    assert info["versions"]["numpy"] == numpy.__version__
    assert info["versions"]["torch_cuda"] == torch.version.cuda
    assert info["device"].startswith("cpu (")
    assert info["environment"]["TRITON_INTERPRET"] == "1"
    assert info["backends"] == backend_report(OP_BACKENDS, torch.device("cpu"))


@requires_triton_interpreter
def test_gankern_info_text(capsys, monkeypatch):
    monkeypatch.setenv("GANKERN_IMPL", "ref")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"gankern {gankern.__version__}"
    assert f"  torch        {torch.__version__}" in lines
    assert "  GANKERN_IMPL=ref" in lines
    for op in OP_BACKENDS:
        start = lines.index(f"  {op}:")
        assert lines[start + 1 : start + 4] == [
            f"    cuda    unavailable: {NO_CUDA_ON_CPU}",
            "    triton  available",
            "    ref     available",
        ]


def test_gankern_without_a_command_prints_help(capsys):
    assert main([]) == 2
    assert "info" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["info", "--no-such-flag"])
