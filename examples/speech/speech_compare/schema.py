"""The RESULT line of speech_demo: schema "speech-result/2".

speech_demo prints one line `RESULT {json}` per run. Its layout is
documented in examples/speech/README.md ("RESULT"); this module is the
machine-readable form of that table, used by the runner (cached results of
another schema are run again) and by tests/test_demo_smoke.py, which also
checks that the README documents exactly these keys.

validate(result) returns a list of problems (empty when the result fits):
missing or unknown keys, wrong types, values out of range.
"""
import re

SCHEMA = "speech-result/2"


class F:
    """One field: kind is int, num, str, bool, obj or list; lo/hi bound
    numbers (inclusive), choices or pattern constrain strings, fields is an
    object's members, items a list's element; nullable allows null."""

    def __init__(self, kind, lo=None, hi=None, choices=None, pattern=None, fields=None,
                 items=None, nullable=False, doc=""):
        self.kind, self.lo, self.hi = kind, lo, hi
        self.choices, self.pattern = choices, pattern
        self.fields, self.items, self.nullable, self.doc = fields, items, nullable, doc


def I(lo=None, hi=None, **kw):  # noqa: E743 - short names keep the table readable
    return F("int", lo, hi, **kw)


def N(lo=None, hi=None, **kw):
    return F("num", lo, hi, **kw)


def S(**kw):
    return F("str", **kw)


def B(**kw):
    return F("bool", **kw)


def O(fields, **kw):  # noqa: E743
    return F("obj", fields=fields, **kw)


def L(items, **kw):
    return F("list", items=items, **kw)


FRACTION = dict(lo=0.0, hi=1.0)
SECONDS = dict(lo=0.0)

EPOCH = O({
    "epoch": I(1, doc="1-based epoch"),
    "lr": N(0.0, doc="learning rate of the epoch's last update"),
    "train_loss": N(0.0, doc="running training loss of the epoch"),
    "train_acc": N(**FRACTION, doc="running training accuracy of the epoch"),
    "test_err": N(**FRACTION, nullable=True,
                  doc="error on the evaluation set after the epoch; null: not evaluated"),
    "grad_norm": N(0.0, doc="mean gradient norm before clipping (after masking)"),
    "clipped": I(0, doc="updates of the epoch whose gradient norm was clipped"),
    "sparsity": N(**FRACTION, doc="zeros in the pruned matrices' weights after the epoch"),
    "seconds": N(**SECONDS, doc="wall time of the epoch"),
    "csp_s": N(**SECONDS, doc="seconds in libcsp during the epoch"),
})

TENSOR = O({
    "name": S(doc="PyTorch-style parameter name"),
    "rows": I(1), "cols": I(1), "numel": I(1, doc="rows x cols"),
    "nnz": I(0, doc="kept weights (libcsp's mask; numel when unpruned)"),
    "expected_nnz": I(0, nullable=True,
                      doc="the schedule's exact count; null when the granularity has none"),
    "nonzero_values": I(0, doc="nonzero weight values (<= nnz)"),
    "cols_used": I(0, doc="inputs some kept weight still reads"),
    "mask_ok": B(doc="every pruned weight and both of its Adam moments are 0"),
    "dense_bytes": I(1, doc="4 x numel"),
    "csr_bytes": I(1, doc="CSR export (libcsp's, with its header; unpruned: computed)"),
    "bitmap_bytes": I(1, doc="bitmap export, likewise"),
    "export_roundtrip": B(doc="the CSR export decodes to the weights bit for bit"),
})

CSP_TENSOR = O({
    "name": S(), "sensing": S(choices=["identity", "gaussian", "rademacher", "activations",
                                       "gram", "?"]),
    "solver": S(choices=["omp", "ista", "fista", "?"]),
    "correction": S(choices=["none", "full", "blend", "?"]),
    "weight_error": N(0.0, doc="||W - X|| / ||W|| at the last event that removed weights"),
    "sensing_error": N(0.0, doc="(w-x)^T G (w-x) / w^T G w at that event"),
    "error_step": I(-1, doc="its step; -1: none"),
    "mean_weight_error": N(0.0), "mean_sensing_error": N(0.0),
    "changing_events": I(0, doc="events that removed weights"),
    "iterations": I(0, doc="solver iterations over all events"),
    "rows_damped": I(0), "rows_not_converged": I(0),
    "event_s": N(**SECONDS, doc="seconds of the last event"),
    "total_event_s": N(**SECONDS, doc="seconds in events"),
})

RESULT = O({
    "schema": S(choices=[SCHEMA], doc="this layout's version"),
    "method": S(doc="--method"),
    "is_csp": B(doc="a compressed-sensing configuration (not GMP)"),
    "sparsity": N(0.0, 0.999999, doc="--sparsity; 0 for dense"),
    "seed": I(0),
    "eval": S(pattern=r"official|speaker:[A-Za-z0-9-]+", doc="--eval"),
    "eval_set": S(choices=["test", "validation"],
                  doc="what test_* measure: the test set, or a validation split (--validate)"),
    "validation": O({"rule": S(doc="how the validation set was carved"),
                     "speaker": S(nullable=True, doc="its speaker, for a speaker fold")},
                    nullable=True, doc="null unless --validate"),
    "epochs": I(1), "hidden": I(1), "batch": I(1), "subset": I(0),
    "steps": I(1, doc="optimizer updates in all"),
    "steps_per_epoch": I(1),
    "train_n": I(1, doc="training utterances"),
    "model": O({
        "input": I(1, doc="log-mel bands"), "hidden": I(1), "classes": I(2),
        "params": I(1, doc="every parameter, computed from the model"),
        "pruned_params": I(1, doc="weights of the pruned matrices"),
        "bias_params": I(1, doc="the biases, never pruned"),
    }),
    "recipe": O({
        "name": S(nullable=True, doc="the last --recipe (masked-decay, old); null: none"),
        "lr": N(0.0), "clip": N(0.0, doc="global gradient-norm clip; 0: off"),
        "bucket": I(0, doc="length bucketing"),
        "lr_decay": S(choices=["none", "linear", "cosine", "exp"]),
        "lr_decay_begin_step": I(0, nullable=True, doc="first decayed update (0-based)"),
        "lr_decay_end_step": I(1, nullable=True, doc="update from which lr_final applies"),
        "lr_final": N(0.0, 1.0, doc="final learning-rate factor (1 without decay)"),
        "mask_gradients": B(doc="pruned weights' gradients masked before clipping"),
    }),
    "test_n": I(1), "test_correct": I(0),
    "test_acc": N(**FRACTION), "test_err": N(**FRACTION, doc="1 - test_acc"),
    "test_loss": N(0.0), "train_loss": N(0.0, doc="last epoch's running loss"),
    "train_acc": N(**FRACTION),
    "training": O({
        "clipped_steps": I(0, doc="updates whose gradient norm was clipped"),
        "mean_grad_norm": N(0.0, doc="mean gradient norm before clipping"),
        "final_lr": N(0.0, doc="learning rate of the last update"),
    }),
    "history": L(EPOCH, doc="one entry per epoch"),
    "schedule": O({
        "begin_step": I(0), "end_step": I(1), "frequency": I(1), "events": I(1),
        "exponent": N(0.0), "initial_sparsity": N(**FRACTION),
        "final_sparsity": N(**FRACTION),
    }, nullable=True, doc="the pruning schedule; null for dense"),
    "tensors": L(TENSOR, doc="W_ih, W_hh, W_out"),
    "nnz": I(0), "numel": I(1),
    "expected_nnz": I(0, nullable=True),
    "sparsity_achieved": N(**FRACTION),
    "sparsity_exact": B(nullable=True, doc="nnz == expected_nnz; null: not defined"),
    "mask_ok": B(),
    "bytes": O({
        "dense": I(1, doc="float32 bytes of the pruned matrices"),
        "csr": I(1), "bitmap": I(1),
        "biases": I(1, doc="float32 bytes of the biases (dense)"),
        "source": S(choices=["libcsp", "speech_demo"],
                    doc="libcsp's exports, or computed for an unpruned run"),
        "export_roundtrip": B(),
    }),
    "time": O({
        "total_s": N(**SECONDS), "train_s": N(**SECONDS), "eval_s": N(**SECONDS),
        "csp_s": N(**SECONDS, doc="libcsp: csp_step, gradient masking and observing"),
        "csp_event_s": N(**SECONDS), "csp_observe_s": N(**SECONDS),
        "csp_mask_s": N(**SECONDS), "csp_share": N(0.0, doc="csp_s / train_s"),
        "events": I(0), "csp_calls": I(0, doc="csp_step() calls"),
    }),
    "csp": O({
        "overrides": S(doc="--csp"), "events": I(0), "event_s": N(**SECONDS),
        "last_event_s": N(**SECONDS), "step_total_s": N(**SECONDS),
        "observe_s": N(**SECONDS), "observed_passes": I(0),
        "tensors": L(CSP_TENSOR),
    }, nullable=True, doc="libcsp's statistics; null for dense"),
    "digest": S(pattern=r"[0-9a-f]{16}", doc="csp_pruner_digest() of the masks (0 for dense)"),
    "libcsp": S(doc="csp_version_string()"),
    "threads": I(1), "blas_threads": S(doc="$OPENBLAS_NUM_THREADS"),
    "data": O({
        "path": S(), "kind": S(choices=["fsdd", "espeak", "other"]),
        "source": S(choices=["flag", "env", "repo", "espeak-fallback"]),
        "files": I(1), "fingerprint": S(pattern=r"[0-9a-f]{16}"),
        "speakers": L(S()),
    }, doc="which data the run used"),
})


def _check(spec, value, path, out):
    if value is None:
        if not spec.nullable:
            out.append(f"{path}: null")
        return
    kind = spec.kind
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "num":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == "str":
        ok = isinstance(value, str)
    elif kind == "obj":
        ok = isinstance(value, dict)
    else:
        ok = isinstance(value, list)
    if not ok:
        out.append(f"{path}: {type(value).__name__} is not {kind}")
        return
    if kind in ("int", "num") and ((spec.lo is not None and value < spec.lo) or
                                   (spec.hi is not None and value > spec.hi)):
        out.append(f"{path}: {value} outside [{spec.lo}, {spec.hi}]")
    if kind == "str" and spec.choices is not None and value not in spec.choices:
        out.append(f"{path}: {value!r} not one of {spec.choices}")
    if kind == "str" and spec.pattern and not re.fullmatch(spec.pattern, value):
        out.append(f"{path}: {value!r} does not match {spec.pattern}")
    if kind == "obj":
        for key in spec.fields.keys() - value.keys():
            out.append(f"{path}.{key}: missing")
        for key in value.keys() - spec.fields.keys():
            out.append(f"{path}.{key}: unknown key")
        for key, sub in spec.fields.items():
            if key in value:
                _check(sub, value[key], f"{path}.{key}", out)
    if kind == "list":
        for i, item in enumerate(value):
            _check(spec.items, item, f"{path}[{i}]", out)


def validate(result):
    """The problems of one parsed RESULT object, as strings (empty: valid)."""
    out = []
    _check(RESULT, result, "RESULT", out)
    return out


def key_paths(spec=RESULT, prefix=""):
    """Every documented key as a dotted path (list items as `name[].key`)."""
    paths = []
    for key, sub in spec.fields.items():
        path = prefix + key
        paths.append(path)
        if sub.kind == "obj":
            paths += key_paths(sub, path + ".")
        elif sub.kind == "list" and sub.items.kind == "obj":
            paths += key_paths(sub.items, path + "[].")
    return paths
