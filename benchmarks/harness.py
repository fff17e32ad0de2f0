"""The benchmark harness shared by every op.

An op plugs in with one :class:`BenchCase`: its variants (shapes and settings), a function
building the inputs, its providers (gankern backends, the reference, ``torch.compile`` of
the reference), and its bytes and/or flop models. :func:`run_case` then measures every
provider side by side, per dtype, layout and mode:

* ``forward``: ``fn(*args)`` with the differentiable inputs requiring grad, as in training
  (so providers that save tensors for backward pay for it here).
* ``backward``: the gradients of the output (against a random ``dy``) with respect to every
  input that requires grad; the forward is done once outside the timing
  (``retain_graph=True``).
* ``double_backward``: as R1 does: the input gradient ``gx = d<out, dy>/d args[0]`` is taken
  once with ``create_graph=True``; timed is the backward of ``<gx, v>`` with respect to every
  differentiable input and to ``dy`` (which in a network depends on the parameters further
  down).

Inputs are rotated between ``copies`` independent copies when one call's working set is
smaller than twice the GPU's L2 cache, so that no call finds its data in the cache.
Unavailable providers are reported as skipped with gankern's reason, never crash the run.
"""

from __future__ import annotations

import fnmatch
import gc
import importlib
import itertools
import json
import math
import pkgutil
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from benchmarks.environment import Environment, timestamp
from benchmarks.results import ROW_KEYS
from benchmarks.timing import (
    QUICK_TIMING,
    MiB,
    TimingSettings,
    copy_bandwidth_gbps,
    matmul_tflops,
    peak_memory_mib,
    time_fn,
)
from gankern.ops import BackendUnavailableError
from gankern.ops._backend import triton_interpreter_enabled

MODES = ("forward", "backward", "double_backward")
LAYOUTS = ("nchw", "channels_last")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
PROVIDER_KINDS = ("gankern", "ref", "compile")


@dataclass(frozen=True)
class Variant:
    """One setting of an op to benchmark, before dtype and layout are chosen."""

    label: str  # e.g. "lrelu", "up2"; several variants may share a label (different shapes)
    shape: tuple[int, ...]  # the main input's shape
    params: dict = field(default_factory=dict)  # JSON-serializable settings of the op


@dataclass(frozen=True)
class Config:
    """A variant at one dtype and layout: what a provider is built for and measured on."""

    case: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    layout: str
    params: dict
    device: torch.device = torch.device("cpu")  # where the run measures (inputs, modules)

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @property
    def shape_text(self) -> str:
        return "x".join(str(s) for s in self.shape)

    @property
    def params_text(self) -> str:
        return json.dumps(self.params, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Provider:
    """One way of running the op.

    ``build(config)`` returns ``fn(*args) -> Tensor`` (anything it builds, such as a filter
    or a module, goes on ``config.device``). For ``kind="compile"`` it returns the
    eager function, which the harness wraps in ``torch.compile`` (fresh Dynamo caches for
    every config, ``dynamic=False``). ``backend`` names the gankern backend a provider
    forces (``"cuda"``, ``"triton"``), so the harness can decline the Triton interpreter.
    """

    name: str
    kind: str  # "gankern", "ref" or "compile"
    build: Callable[[Config], Callable[..., torch.Tensor]]
    backend: str | None = None

    def __post_init__(self):
        if self.kind not in PROVIDER_KINDS:
            raise ValueError(f"kind must be one of {PROVIDER_KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class Target:
    """A performance goal, checked on the fastest gankern provider of each row group.

    ``applies(config, mode)`` says which groups it covers; every bound that is not None must
    hold (percentages of the copy bandwidth or matmul rate, speedups as ratios of medians
    against the fastest ``ref`` and ``compile`` providers).
    """

    description: str
    applies: Callable[[Config, str], bool]
    min_pct_copy_bw: float | None = None
    min_pct_matmul: float | None = None
    min_speedup_vs_ref: float | None = None
    min_speedup_vs_compile: float | None = None

    def check(self, summary: dict) -> bool | None:
        """True/False when every bound can be evaluated on ``summary``, else None."""
        bounds = (
            (self.min_pct_copy_bw, "pct_of_copy_bw"),
            (self.min_pct_matmul, "pct_of_matmul"),
            (self.min_speedup_vs_ref, "vs_ref"),
            (self.min_speedup_vs_compile, "vs_compile"),
        )
        result = True
        for bound, key in bounds:
            if bound is None:
                continue
            value = summary.get(key)
            if value is None:
                return None
            result = result and value >= bound
        return result


@dataclass(frozen=True)
class BenchCase:
    """Everything the harness needs to benchmark one op.

    ``make_inputs(config, device)`` returns the positional arguments of the providers'
    functions, differentiable ones with ``requires_grad=True``; ``args[0]`` is the input
    whose gradient the double-backward mode takes. ``bytes_moved`` and ``flops`` return
    the op's model for a config and mode (None where it has none); see each bench file.
    """

    op: str
    description: str
    variants: Callable[[bool], Sequence[Variant]]  # quick -> variants
    make_inputs: Callable[[Config, torch.device], list]
    providers: Sequence[Provider]
    bytes_moved: Callable[[Config, str], int | None] | None = None
    flops: Callable[[Config, str], int | None] | None = None
    layouts: tuple[str, ...] = LAYOUTS
    modes: tuple[str, ...] = MODES
    targets: Sequence[Target] = ()


_REGISTRY: dict[str, BenchCase] = {}


def register(case: BenchCase) -> BenchCase:
    """Add ``case`` to the registry (replacing an earlier case of the same op)."""
    if not isinstance(case, BenchCase):
        raise TypeError(f"case must be a BenchCase, got {type(case).__name__}")
    _REGISTRY[case.op] = case
    return case


def discover() -> dict[str, BenchCase]:
    """Import every ``benchmarks/bench_*.py`` (each registers its cases); return the registry.

    A bench file that fails to import is reported with a warning and left out, so that one
    broken file does not stop the others from running.
    """
    import benchmarks

    for module in pkgutil.iter_modules(benchmarks.__path__):
        if module.name.startswith("bench_"):
            try:
                importlib.import_module(f"benchmarks.{module.name}")
            except Exception as exc:
                warnings.warn(
                    f"benchmarks.{module.name} failed to import and is left out "
                    f"({type(exc).__name__}: {exc})",
                    RuntimeWarning,
                    stacklevel=2,
                )
    return dict(_REGISTRY)


# --- helpers for the bench files -----------------------------------------------------------


def to_layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """``x`` in the ``"nchw"`` (contiguous) or ``"channels_last"`` memory format."""
    if layout == "nchw":
        return x.contiguous()
    if layout == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def backend_and_ref_providers(provider: Callable[[str], Callable]) -> list[Provider]:
    """gankern's CUDA and Triton backends, ref eager and torch.compile(ref).

    ``provider(impl)`` returns the ``build`` of the provider that calls the op with ``impl``.
    """
    return [
        Provider("gankern_cuda", "gankern", provider("cuda"), backend="cuda"),
        Provider("gankern_triton", "gankern", provider("triton"), backend="triton"),
        Provider("ref", "ref", provider("ref")),
        Provider("compile_ref", "compile", provider("ref")),
    ]


def tensor_bytes(shape: Sequence[int], dtype: torch.dtype) -> int:
    """Bytes of a dense tensor of ``shape`` and ``dtype``."""
    return math.prod(shape) * torch.empty((), dtype=dtype).element_size()


def config_from_row(row: dict) -> Config:
    """The :class:`Config` a result row was measured on (for targets in reports)."""
    return Config(
        case=row["case"],
        shape=tuple(int(s) for s in str(row["shape"]).split("x")),
        dtype=DTYPES[row["dtype"]],
        layout=row["layout"],
        params=json.loads(row["params"]) if row.get("params") else {},
    )


# --- running -------------------------------------------------------------------------------


@dataclass
class RunOptions:
    """What to run and how (``None`` selections mean: everything the case offers)."""

    device: torch.device
    quick: bool = False
    dtypes: Sequence[str] = tuple(DTYPES)
    layouts: Sequence[str] | None = None
    modes: Sequence[str] | None = None
    providers: Sequence[str] | None = None
    cases: Sequence[str] | None = None  # fnmatch patterns on the variant labels
    timing: TimingSettings | None = None  # default: TimingSettings() or QUICK_TIMING
    compile_backend: str = "inductor"
    max_copies: int = 16
    cache_bytes: int | None = None  # default: the GPU's L2 size; 0 (no rotation) on the CPU

    def __post_init__(self):
        for name, given, valid in (
            ("dtypes", self.dtypes, DTYPES),
            ("layouts", self.layouts, LAYOUTS),
            ("modes", self.modes, MODES),
        ):
            bad = [v for v in (given or ()) if v not in valid]
            if bad:
                raise ValueError(f"{name} must be among {tuple(valid)}, got {bad}")
        if self.timing is None:
            self.timing = QUICK_TIMING if self.quick else TimingSettings()
        if self.cache_bytes is None:
            self.cache_bytes = device_cache_bytes(self.device)


@dataclass(frozen=True)
class Baselines:
    """The device's measured rates, against which every row is put in proportion."""

    copy_bw_gbps: float
    matmul_tflops: float
    matmul_dtype: str


def device_cache_bytes(device: torch.device) -> int:
    """The L2 size of a CUDA device (50 MiB, the H100's, if torch does not say); 0 on CPUs."""
    if device.type != "cuda":
        return 0
    props = torch.cuda.get_device_properties(device)
    return int(getattr(props, "L2_cache_size", 0) or 50 * MiB)


def measure_baselines(device: torch.device, quick: bool, timing: TimingSettings) -> Baselines:
    """Copy bandwidth (a large device-to-device copy) and matmul rate (bf16 on GPUs)."""
    if device.type == "cuda":
        copy_bytes, n, dtype = (64 if quick else 1024) * MiB, 2048 if quick else 8192, "bfloat16"
    else:  # float32: CPU bf16 matmuls are not what the CPU is built for
        copy_bytes, n, dtype = (8 if quick else 256) * MiB, 256 if quick else 1024, "float32"
    bw = copy_bandwidth_gbps(device, copy_bytes, timing)
    rate = matmul_tflops(device, n, DTYPES[dtype], timing)
    return Baselines(copy_bw_gbps=bw, matmul_tflops=rate, matmul_dtype=dtype)


def rotation_copies(working_set_bytes: int, cache_bytes: int, max_copies: int) -> int:
    """How many input copies to rotate so that a call never finds its data in the cache.

    Between two uses of one copy the others stream at least twice the cache through it.
    """
    if cache_bytes <= 0 or working_set_bytes >= 2 * cache_bytes:
        return 1
    needed = 1 + math.ceil(2 * cache_bytes / max(working_set_bytes, 1))
    return max(1, min(max_copies, needed))


def select_configs(case: BenchCase, options: RunOptions) -> list[Config]:
    """The case's variants crossed with the selected dtypes and layouts."""
    layouts = [lay for lay in case.layouts if options.layouts is None or lay in options.layouts]
    configs = []
    for variant in case.variants(options.quick):
        if options.cases and not any(fnmatch.fnmatch(variant.label, p) for p in options.cases):
            continue
        for dtype_name in options.dtypes:
            for layout in layouts:
                configs.append(
                    Config(variant.label, tuple(variant.shape), DTYPES[dtype_name], layout,
                           dict(variant.params), options.device)
                )
    return configs


def classify_failure(
    exc: BaseException, provider_kind: str = "", mode: str = ""
) -> tuple[str, str]:
    """("skipped", reason) for an unavailable backend or a known limitation, else "error".

    Known limitations: running out of device memory, and double backward through
    ``torch.compile`` (AOTAutograd does not support it; depending on the graph it says so
    or fails earlier with another message).
    """
    text = str(exc).strip().splitlines()
    message = text[0] if text else type(exc).__name__
    if isinstance(exc, BackendUnavailableError):
        return "skipped", message
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return "skipped", f"out of memory ({message[:160]})"
    if provider_kind == "compile" and mode == "double_backward":
        if "does not currently support double backward" in str(exc):
            return "skipped", message
        return "skipped", f"torch.compile does not support double backward ({message[:200]})"
    return "error", f"{type(exc).__name__}: {message}"[:400]


def _provider_precheck(provider: Provider, device: torch.device) -> str | None:
    if provider.backend == "triton" and device.type == "cpu" and triton_interpreter_enabled():
        return "TRITON_INTERPRET=1: the Triton interpreter is a correctness tool, not benchmarked"
    return None


def _build(provider: Provider, config: Config, options: RunOptions):
    fn = provider.build(config)
    if provider.kind == "compile":
        torch._dynamo.reset()  # fresh caches: no recompile limit across configs
        fn = torch.compile(fn, backend=options.compile_backend, dynamic=False)
    return fn


def _prepare(fn, args: list, mode: str) -> Callable[[], object]:
    """A zero-argument callable doing one timed unit of ``mode`` on ``args``."""
    if mode == "forward":
        return lambda: fn(*args)
    wrt = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
    if not wrt:
        raise ValueError(f"mode {mode!r} needs inputs that require grad, got none")
    out = fn(*args)
    if mode == "backward":
        dy = torch.randn_like(out)
        return lambda: torch.autograd.grad(out, wrt, dy, retain_graph=True)
    if not (isinstance(args[0], torch.Tensor) and args[0].requires_grad):
        raise ValueError("double_backward needs args[0] to require grad (R1 differentiates it)")
    dy = torch.randn_like(out).requires_grad_()
    (gx,) = torch.autograd.grad(out, args[0], dy, create_graph=True)
    v = torch.randn_like(gx)
    wrt = [*wrt, dy]
    return lambda: torch.autograd.grad(gx, wrt, v, retain_graph=True, allow_unused=True)


def _nbytes(values) -> int:
    return sum(v.numel() * v.element_size() for v in values if isinstance(v, torch.Tensor))


def _measure(case, config, fn, mode, options: RunOptions, baselines: Baselines) -> dict:
    """Time one provider in one mode; return the measured fields of its row."""
    first = case.make_inputs(config, options.device)
    out = fn(*first)  # first call: compilation, extension build, availability
    working_set = (_nbytes(first) + _nbytes([out])) * (1 + MODES.index(mode))
    del out
    copies = rotation_copies(working_set, options.cache_bytes, options.max_copies)
    inputs = [first] + [case.make_inputs(config, options.device) for _ in range(copies - 1)]
    calls = [_prepare(fn, args, mode) for args in inputs]
    cycle = itertools.cycle(calls)
    timing = time_fn(lambda: next(cycle)(), options.timing, options.device)
    peak = peak_memory_mib(calls[0], options.device)

    seconds = timing.median_ms * 1e-3
    moved = case.bytes_moved(config, mode) if case.bytes_moved else None
    flops = case.flops(config, mode) if case.flops else None
    gbps = moved / seconds / 1e9 if moved else None
    tflops = flops / seconds / 1e12 if flops else None
    return {
        "median_ms": timing.median_ms,
        "p20_ms": timing.p20_ms,
        "p80_ms": timing.p80_ms,
        "reps": timing.reps,
        "host_ms": timing.host_ms,
        "copies": copies,
        "bytes_moved": moved,
        "gbps": gbps,
        "pct_of_copy_bw": None if gbps is None else 100 * gbps / baselines.copy_bw_gbps,
        "flops": flops,
        "tflops": tflops,
        "pct_of_matmul": None if tflops is None else 100 * tflops / baselines.matmul_tflops,
        "peak_mem_mb": peak,
    }


def _release(device: torch.device) -> None:
    """Give the memory of finished measurements back (tracebacks of failures hold cycles)."""
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()


def run_case(
    case: BenchCase,
    options: RunOptions,
    env: Environment,
    baselines: Baselines,
    run_id: str,
    on_rows: Callable[[list[dict]], None] | None = None,
) -> list[dict]:
    """Measure every selected provider, config and mode of ``case``; return the rows.

    ``on_rows`` receives the rows of each config as soon as they are measured (to write
    them before a long run is interrupted).
    """
    providers = [
        p for p in case.providers if options.providers is None or p.name in options.providers
    ]
    modes = [m for m in case.modes if options.modes is None or m in options.modes]
    base = {key: None for key in ROW_KEYS}
    base.update(
        op=case.op,
        device=env.device,
        torch_version=env.torch_version,
        triton_version=env.triton_version,
        cuda_version=env.cuda_version,
        gankern_commit=env.gankern_commit,
        copy_bw_gbps=baselines.copy_bw_gbps,
        matmul_tflops=baselines.matmul_tflops,
        matmul_dtype=baselines.matmul_dtype,
        run_id=run_id,
    )
    rows = []
    for config in select_configs(case, options):
        config_rows = []
        for provider in providers:
            skip = _provider_precheck(provider, options.device)
            fn, failure = None, None
            if skip is None:
                try:
                    fn = _build(provider, config, options)
                except Exception as exc:
                    failure = classify_failure(exc)
            for mode in modes:
                row = dict(base)
                row.update(
                    case=config.case,
                    provider=provider.name,
                    provider_kind=provider.kind,
                    mode=mode,
                    shape=config.shape_text,
                    dtype=config.dtype_name,
                    layout=config.layout,
                    params=config.params_text,
                    timestamp=timestamp(),
                )
                if skip is not None:
                    row.update(status="skipped", reason=skip)
                elif failure is not None:
                    row.update(status=failure[0], reason=failure[1])
                else:
                    torch.manual_seed(0)
                    try:
                        row.update(_measure(case, config, fn, mode, options, baselines))
                        row["status"] = "ok"
                    except Exception as exc:
                        row["status"], row["reason"] = classify_failure(exc, provider.kind, mode)
                        _release(options.device)
                config_rows.append(row)
            del fn
            _release(options.device)
        if on_rows is not None:
            on_rows(config_rows)
        rows.extend(config_rows)
    return rows
