"""The `RESULT rnnt-result/2 {json}` line of rnnt_demo (examples/rnnt/README.md,
"RESULT"). Bump SCHEMA (and rnnt_demo.c's RESULT_SCHEMA) when a field changes
meaning or type; adding a field is not a change.

Version 2 (one-shot pruning, issue 14): `epochs` is the number of training
epochs run, i.e. --finetune-epochs for a --one-shot run, and may be 0 (a
one-shot run without fine-tuning: `history` is then empty); new fields
one_shot, dense_model, calib_n, calib_seconds, finetune_epochs, finetune_lr,
valid_wer_after_event (null unless a pruned one-shot run), params_fnv."""
import json
import math

SCHEMA = "rnnt-result/2"
PREFIX = "RESULT " + SCHEMA + " "

_NUM = (int, float)
# name: (type, lo, hi); None = no bound; type "num?" allows null (NaN)
FIELDS = {
    "schema": (str, None, None),
    "method": (str, None, None),
    "summary": (str, None, None),
    "prunes": (int, 0, 1),
    "is_csp": (int, 0, 1),
    "sparsity": (_NUM, 0.0, 1.0),
    "csp_overrides": (str, None, None),
    "seed": (int, 0, None),
    "epochs": (int, 0, None),
    "one_shot": (bool, None, None),
    "dense_model": (str, None, None),
    "calib_n": (int, 0, None),
    "calib_seconds": (_NUM, 0.0, None),
    "finetune_epochs": (int, 0, None),
    "finetune_lr": (_NUM, 0.0, None),
    "valid_wer_after_event": ("num?", 0.0, None),
    "params_fnv": (str, None, None),
    "eval": (str, None, None),
    "eval_set": (str, None, None),
    "data": (str, None, None),
    "data_description": (str, None, None),
    "model": (dict, None, None),
    "wer": (_NUM, 0.0, None),
    "string_acc": (_NUM, 0.0, 100.0),
    "sub": (int, 0, None),
    "ins": (int, 0, None),
    "del": (int, 0, None),
    "ref_digits": (int, 1, None),
    "strings": (int, 1, None),
    "valid_wer": (_NUM, 0.0, None),
    "train_seconds": (_NUM, 0.0, None),
    "csp_step_seconds": (_NUM, 0.0, None),
    "csp_seconds": (_NUM, 0.0, None),
    "csp_share": (_NUM, 0.0, 1.0),
    "events": (int, 0, None),
    "observed_passes": (int, 0, None),
    "prunable_numel": (int, 1, None),
    "nnz": (int, 0, None),
    "actual_sparsity": (_NUM, 0.0, 1.0),
    "dense_bytes": (int, 1, None),
    "csr_bytes": (int, 1, None),
    "bitmap_bytes": (int, 1, None),
    "mask_ok": (bool, None, None),
    "export_ok": (bool, None, None),
    "tensors": (list, None, None),
    "history": (list, None, None),
    "threads": (int, 0, None),
    "libcsp": (str, None, None),
}
MODEL = ("in", "enc_layers", "enc_hidden", "embed", "pred_hidden", "joint", "vocab",
         "params", "prunable")
TENSOR = ("name", "rows", "cols", "nnz", "csr_bytes", "bitmap_bytes")
HISTORY = ("epoch", "loss", "valid_wer", "lr", "seconds")


def check(obj):
    """Raise ValueError naming the first field that breaks the schema."""
    if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
        raise ValueError("not an %s object" % SCHEMA)
    for name, (typ, lo, hi) in FIELDS.items():
        if name not in obj:
            raise ValueError("missing field %r" % name)
        v = obj[name]
        if typ == "num?":
            if v is None:
                continue
            typ = _NUM
        if typ is int and isinstance(v, bool) or (typ is _NUM and isinstance(v, bool)):
            raise ValueError("field %r is a bool" % name)
        if not isinstance(v, typ):
            raise ValueError("field %r has type %s" % (name, type(v).__name__))
        if typ in (int, _NUM) and not (isinstance(v, float) and math.isnan(v)):
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise ValueError("field %r = %r out of [%s, %s]" % (name, v, lo, hi))
    for k in MODEL:
        if not isinstance(obj["model"].get(k), int):
            raise ValueError("model.%s missing" % k)
    for t in obj["tensors"]:
        for k in TENSOR:
            if k not in t:
                raise ValueError("tensors[].%s missing" % k)
    if len(obj["history"]) != obj["epochs"]:
        raise ValueError("history has %d epochs, not %d" % (len(obj["history"]), obj["epochs"]))
    for h in obj["history"]:
        for k in HISTORY:
            if k not in h:
                raise ValueError("history[].%s missing" % k)
    if obj["data"] not in ("fsdd", "espeak") or obj["eval_set"] not in ("test", "valid"):
        raise ValueError("bad data or eval_set")
    if obj["epochs"] == 0 and not obj["one_shot"]:
        raise ValueError("epochs 0 without one_shot")
    if obj["one_shot"] and obj["finetune_epochs"] != obj["epochs"]:
        raise ValueError("one_shot: epochs is not finetune_epochs")
    if obj["one_shot"] != (obj["dense_model"] != ""):
        raise ValueError("one_shot and dense_model disagree")
    if len(obj["params_fnv"]) != 16:
        raise ValueError("params_fnv is not 16 hex digits")
    if obj["nnz"] > obj["prunable_numel"]:
        raise ValueError("nnz above prunable_numel")
    if obj["sub"] + obj["del"] > obj["ref_digits"]:
        raise ValueError("more substitutions + deletions than reference digits")
    return obj


def parse(text):
    """The checked object of the last RESULT line of rnnt_demo's stdout."""
    lines = [l for l in text.splitlines() if l.startswith("RESULT ")]
    if not lines:
        raise ValueError("no RESULT line")
    if not lines[-1].startswith(PREFIX):
        raise ValueError("RESULT line of another schema: %r" % lines[-1][:40])
    return check(json.loads(lines[-1][len(PREFIX):]))
