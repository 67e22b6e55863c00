"""The RESULT line of speech_demo: schema "speech-result/3".

speech_demo prints one line `RESULT {json}` per run. Its layout is
documented in examples/speech/README.md ("RESULT"); this module is the
machine-readable form of that table, used by the runner (cached results of
another schema are run again) and by tests/test_demo_smoke.py, which also
checks that the README documents exactly these keys.

validate(result) returns a list of problems (empty when the result fits):
missing or unknown keys, wrong types, values out of range.
"""
import re

SCHEMA = "speech-result/3"


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


def O(fields=None, **kw):  # noqa: E743
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
    "rows": I(1, doc="matrix rows"), "cols": I(1, doc="matrix columns (inputs)"),
    "numel": I(1, doc="rows x cols"),
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
    "name": S(doc="parameter name"),
    "sensing": S(choices=["identity", "gaussian", "rademacher", "activations", "gram", "?"],
                 doc="sensing operator in force"),
    "solver": S(choices=["omp", "ista", "fista", "sweep", "?"], doc="solver in force"),
    "correction": S(choices=["none", "full", "blend", "?"], doc="correction in force"),
    "weight_error": N(0.0, doc="||W - X|| / ||W|| at the last event that removed weights"),
    "sensing_error": N(0.0, doc="(w-x)^T G (w-x) / w^T G w at that event"),
    "error_step": I(-1, doc="its step; -1: none"),
    "mean_weight_error": N(0.0, doc="weight error averaged over events that removed weights"),
    "mean_sensing_error": N(0.0, doc="sensing error, likewise"),
    "changing_events": I(0, doc="events that removed weights"),
    "iterations": I(0, doc="solver iterations over all events"),
    "rows_damped": I(0, doc="rows solved with damping, over all events"),
    "rows_not_converged": I(0, doc="rows that hit the iteration limit, over all events"),
    "event_s": N(**SECONDS, doc="seconds of the last event"),
    "total_event_s": N(**SECONDS, doc="seconds in events"),
})

RESULT = O({
    "schema": S(choices=[SCHEMA], doc="this layout's version"),
    "method": S(doc="--method"),
    "is_csp": B(doc="a compressed-sensing configuration (not GMP)"),
    "sparsity": N(0.0, 0.999999, doc="--sparsity; 0 for dense"),
    "seed": I(0, doc="--seed: model init, shuffling, libcsp's seed"),
    "eval": S(pattern=r"official|speaker:[A-Za-z0-9-]+", doc="--eval"),
    "eval_set": S(choices=["test", "validation"],
                  doc="what test_* measure: the test set, or a validation split (--validate)"),
    "validation": O({"rule": S(doc="how the validation set was carved"),
                     "speaker": S(nullable=True, doc="its speaker, for a speaker fold")},
                    nullable=True, doc="null unless --validate"),
    "epochs": I(1, doc="--epochs"), "hidden": I(1, doc="--hidden (LSTM width H)"),
    "batch": I(1, doc="--batch"), "subset": I(0, doc="--subset (0: all)"),
    "steps": I(0, doc="optimizer updates in all (0: a one-shot run without fine-tuning)"),
    "steps_per_epoch": I(1, doc="ceil(train_n / batch)"),
    "train_n": I(1, doc="training utterances"),
    "model": O(doc="the architecture, counted from the model", fields={
        "input": I(1, doc="log-mel bands"), "hidden": I(1, doc="LSTM width"),
        "classes": I(2, doc="digits"),
        "params": I(1, doc="every parameter, computed from the model"),
        "pruned_params": I(1, doc="weights of the pruned matrices"),
        "bias_params": I(1, doc="the biases, never pruned"),
    }),
    "recipe": O(doc="the training recipe", fields={
        "name": S(nullable=True, doc="the last --recipe (masked-decay, old); null: none"),
        "lr": N(0.0, doc="Adam's base learning rate (--lr)"),
        "clip": N(0.0, doc="global gradient-norm clip; 0: off"),
        "bucket": I(0, doc="length bucketing"),
        "lr_decay": S(choices=["none", "linear", "cosine", "exp"], doc="--lr-decay"),
        "lr_decay_begin_step": I(0, nullable=True, doc="first decayed update (0-based)"),
        "lr_decay_end_step": I(1, nullable=True, doc="update from which lr_final applies"),
        "lr_final": N(0.0, 1.0, doc="final learning-rate factor (1 without decay)"),
        "mask_gradients": B(doc="pruned weights' gradients masked before clipping"),
    }),
    "test_n": I(1, doc="utterances scored (the validation set with --validate)"),
    "test_correct": I(0, doc="of them correct after the last epoch"),
    "test_acc": N(**FRACTION, doc="test_correct / test_n"),
    "test_err": N(**FRACTION, doc="1 - test_acc"),
    "test_loss": N(0.0, doc="mean cross-entropy on them"),
    "train_loss": N(0.0, doc="last epoch's running loss"),
    "train_acc": N(**FRACTION, doc="last epoch's running accuracy"),
    "training": O(doc="over all updates", fields={
        "clipped_steps": I(0, doc="updates whose gradient norm was clipped"),
        "mean_grad_norm": N(0.0, doc="mean gradient norm before clipping"),
        "final_lr": N(0.0, doc="learning rate of the last update"),
    }),
    "history": L(EPOCH, doc="one entry per epoch"),
    "schedule": O({
        "begin_step": I(0, doc="first event"), "end_step": I(0, doc="last event"),
        "frequency": I(1, doc="steps between events"),
        "events": I(1, doc="events in the run"),
        "exponent": N(0.0, doc="polynomial exponent (3: cubic)"),
        "initial_sparsity": N(**FRACTION, doc="--initial-sparsity"),
        "final_sparsity": N(**FRACTION, doc="--sparsity"),
    }, nullable=True, doc="the pruning schedule; null for dense"),
    "one_shot": O({
        "dense_model": S(doc="--load-dense (file name): the trained model pruned"),
        "calib_n": I(0, doc="calibration utterances observed (0: no activation sensing)"),
        "calib_s": N(**SECONDS, doc="seconds of the calibration pass"),
        "event_s": N(**SECONDS, doc="seconds of the one event"),
        "finetune_epochs": I(0, doc="--finetune-epochs"),
        "err_after_event": N(**FRACTION, doc="error on the evaluation set right after the "
                             "event, before fine-tuning"),
        "loss_after_event": N(0.0, doc="its mean cross-entropy"),
    }, nullable=True, doc="--one-shot; null otherwise"),
    "tensors": L(TENSOR, doc="W_ih, W_hh, W_out"),
    "nnz": I(0, doc="kept weights of the three matrices"),
    "numel": I(1, doc="their weights (model.pruned_params)"),
    "expected_nnz": I(0, nullable=True, doc="sum of the tensors' exact counts; null: not defined"),
    "sparsity_achieved": N(**FRACTION, doc="1 - nnz / numel"),
    "sparsity_exact": B(nullable=True, doc="nnz == expected_nnz; null: not defined"),
    "mask_ok": B(doc="every tensor's mask_ok"),
    "bytes": O({
        "dense": I(1, doc="float32 bytes of the pruned matrices"),
        "csr": I(1, doc="sum of the tensors' csr_bytes"),
        "bitmap": I(1, doc="sum of the tensors' bitmap_bytes"),
        "biases": I(1, doc="float32 bytes of the biases (dense)"),
        "source": S(choices=["libcsp", "speech_demo"],
                    doc="libcsp's exports, or computed for an unpruned run"),
        "export_roundtrip": B(doc="every tensor's export_roundtrip"),
    }, doc="compressed sizes"),
    "time": O({
        "total_s": N(**SECONDS, doc="the whole run"), "train_s": N(**SECONDS, doc="training"),
        "eval_s": N(**SECONDS, doc="evaluation"),
        "csp_s": N(**SECONDS, doc="libcsp: csp_step, gradient masking and observing"),
        "csp_event_s": N(**SECONDS, doc="csp_step() calls that were pruning events"),
        "csp_observe_s": N(**SECONDS, doc="csp_pruner_wants_observe() and observing"),
        "csp_mask_s": N(**SECONDS, doc="csp_pruner_mask_gradients()"),
        "csp_share": N(0.0, doc="csp_s / train_s"),
        "events": I(0, doc="pruning events"), "csp_calls": I(0, doc="csp_step() calls"),
    }, doc="seconds"),
    "csp": O({
        "overrides": S(doc="--csp"), "events": I(0, doc="csp_step_stats: events"),
        "event_s": N(**SECONDS, doc="seconds in events"),
        "last_event_s": N(**SECONDS, doc="seconds of the last event"),
        "step_total_s": N(**SECONDS, doc="seconds in csp_step()"),
        "observe_s": N(**SECONDS, doc="seconds observing activations"),
        "observed_passes": I(0, doc="forward passes observed"),
        "tensors": L(CSP_TENSOR, doc="per tensor, csp_pruner_tensor_stats()"),
    }, nullable=True, doc="libcsp's statistics; null for dense"),
    "digest": S(pattern=r"[0-9a-f]{16}", doc="csp_pruner_digest() of the masks (0 for dense)"),
    "libcsp": S(doc="csp_version_string()"),
    "threads": I(1, doc="--threads (libcsp's)"), "blas_threads": S(doc="$OPENBLAS_NUM_THREADS"),
    "data": O({
        "path": S(doc="data directory"),
        "kind": S(choices=["fsdd", "espeak", "other"], doc="what the data is"),
        "source": S(choices=["flag", "env", "repo", "espeak-fallback"],
                    doc="where the directory came from"),
        "files": I(1, doc="recordings"),
        "fingerprint": S(pattern=r"[0-9a-f]{16}", doc="FNV-1a of the names and lengths"),
        "speakers": L(S(), doc="speaker names, sorted"),
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


def _type_words(spec):
    if spec.kind == "obj":
        words = "object"
    elif spec.kind == "list":
        words = "list of " + ("objects" if spec.items.kind == "obj" else spec.items.kind + "s")
    elif spec.kind == "str" and spec.choices:
        words = "one of " + ", ".join(f"`{c}`" for c in spec.choices)
    elif spec.kind == "str" and spec.pattern:
        words = "string `{}`".format(spec.pattern.replace("|", "\\|"))
    elif spec.kind in ("int", "num"):
        words = "integer" if spec.kind == "int" else "number"
        if spec.lo is not None and spec.hi is not None:
            words += f" in [{spec.lo:g}, {spec.hi:g}]"
        elif spec.lo is not None:
            words += f" >= {spec.lo:g}"
    else:
        words = {"str": "string", "bool": "boolean"}[spec.kind]
    return words + (" or null" if spec.nullable else "")


def markdown_rows(spec=RESULT, prefix=""):
    """The README table's rows: | `key` | type | meaning |."""
    rows = []
    for key, sub in spec.fields.items():
        rows.append(f"| `{prefix + key}` | {_type_words(sub)} | {sub.doc} |")
        if sub.kind == "obj":
            rows += markdown_rows(sub, prefix + key + ".")
        elif sub.kind == "list" and sub.items.kind == "obj":
            rows += markdown_rows(sub.items, prefix + key + "[].")
    return rows


if __name__ == "__main__":
    print("| key | type | meaning |\n|---|---|---|\n" + "\n".join(markdown_rows()))
