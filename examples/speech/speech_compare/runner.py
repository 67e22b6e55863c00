"""Runs speech_demo: up to `jobs` processes at once, each single-threaded
(OPENBLAS_NUM_THREADS=1), every RESULT cached under the cache directory,
keyed by the run's configuration (method, sparsity, seed, evaluation,
epochs, extra flags, the data's fingerprint). A cached result is used when
the same binaries (speech_demo and libcsp.so) made it and it has the
current RESULT schema; otherwise the run is made again (accept_stale keeps
results of other binaries)."""
import concurrent.futures
import glob
import hashlib
import json
import os
import shlex
import subprocess
import threading
import time

from . import schema

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # examples/speech
ROOT = os.path.dirname(os.path.dirname(HERE))                       # the source tree


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def binaries_id(demo, build):
    """A hash of speech_demo and the libcsp shared libraries of the build."""
    libs = sorted(p for p in glob.glob(os.path.join(build, "lib", "libcsp.so.*"))
                  if os.path.isfile(p) and not os.path.islink(p))
    h = hashlib.sha256()
    for p in [demo] + libs:
        h.update(sha256_file(p).encode())
    return h.hexdigest()[:16]


def run_key(cfg):
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:20]


def demo_env():
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


def list_methods(demo):
    """{name: METHOD json} from speech_demo --list-methods."""
    r = subprocess.run([demo, "--list-methods"], capture_output=True, text=True, check=True)
    return {m["name"]: m for m in (json.loads(ln[7:]) for ln in r.stdout.splitlines()
                                   if ln.startswith("METHOD "))}


def resolve_data(demo, data=None):
    """The DATA json of speech_demo --print-data (this may synthesise the
    espeak-ng fallback), with display_path relative to the source tree when
    it lies next to it. None when speech_demo found no data."""
    cmd = [demo, "--print-data"] + (["--data", data] if data else [])
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=demo_env())
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("DATA ")]
    if r.returncode != 0 or not line:
        return None
    info = json.loads(line[0][5:])
    rel = os.path.relpath(info["path"], ROOT)
    info["display_path"] = rel if not rel.startswith("../..") else info["path"]
    return info


def portable(obj, data):
    """obj with this machine's paths made relative to the source tree: the
    data directory becomes its display path and any other absolute path
    inside the tree is made relative, so a report can be committed."""
    if isinstance(obj, dict):
        return {k: portable(v, data) for k, v in obj.items()}
    if isinstance(obj, list):
        return [portable(v, data) for v in obj]
    if isinstance(obj, str) and os.path.isabs(obj):
        if os.path.normpath(obj) == os.path.normpath(data["path"]):
            return data["display_path"]
        if os.path.commonpath([obj, ROOT]) == ROOT:
            return os.path.relpath(obj, ROOT)
    return obj


def git_commit():
    try:
        out = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                             capture_output=True, text=True).stdout.strip()
        return out or "?"
    except OSError:
        return "?"


class Runner:
    """Runs configurations (dicts made by config()) and returns cache
    entries {config, binaries, wall_s, command, result}."""

    def __init__(self, demo, build, cache, data, jobs=1, epochs=20, extra="", fresh=False,
                 accept_stale=False, cached_only=False, nice=0):
        self.demo, self.cache, self.data = demo, cache, data
        self.jobs, self.epochs, self.extra = max(1, jobs), epochs, extra
        self.fresh, self.accept_stale, self.cached_only = fresh, accept_stale, cached_only
        self.nice = nice
        self.hide_errors = False  # log "done" instead of the error (blind runs)
        self.bin_id = binaries_id(demo, build)
        self.lock = threading.Lock()
        self.done = self.total = self.fresh_runs = self.cached = 0
        self.failed, self.missing = [], []
        os.makedirs(cache, exist_ok=True)

    def config(self, method, sparsity, seed, ev, extra=None):
        return {
            "method": method,
            "sparsity": None if method == "dense" else sparsity,
            "seed": seed,
            "eval": ev,
            "epochs": self.epochs,
            "extra": self.extra if extra is None else extra,
            "data": self.data["fingerprint"],
        }

    def command(self, cfg):
        cmd = [self.demo, "--method", cfg["method"], "--seed", str(cfg["seed"]),
               "--epochs", str(cfg["epochs"]), "--eval", cfg["eval"],
               "--data", self.data["path"], "--quiet"]
        if cfg["sparsity"] is not None:
            cmd += ["--sparsity", repr(cfg["sparsity"])]
        cmd += shlex.split(cfg["extra"])
        return (["nice", "-n", str(self.nice)] if self.nice else []) + cmd

    def _cached(self, path):
        if self.fresh or not os.path.exists(path):
            return None
        with open(path) as f:
            entry = json.load(f)
        if entry.get("result", {}).get("schema") != schema.SCHEMA:
            return None
        if entry.get("binaries") == self.bin_id or self.accept_stale:
            return entry
        return None

    def _log(self, n, label, text):
        print(f"[{n}/{self.total}] {label}: {text}", flush=True)

    def _execute(self, cfg, key):
        cmd = self.command(cfg)
        t0 = time.monotonic()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=demo_env())
        wall = time.monotonic() - t0
        with open(os.path.join(self.cache, key + ".log"), "w") as f:
            f.write(" ".join(shlex.quote(c) for c in cmd) + "\n" + proc.stdout)
        result = None
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                result = json.loads(line[7:])
        problems = schema.validate(result) if result is not None else ["no RESULT line"]
        return proc, wall, cmd, result, problems

    def run(self, cfg):
        key = run_key(cfg)
        path = os.path.join(self.cache, key + ".json")
        entry = self._cached(path)
        if entry is not None:
            with self.lock:
                self.cached += 1
                self.done += 1
            return entry
        if self.cached_only:
            with self.lock:
                self.missing.append(cfg)
            return None
        proc, wall, cmd, result, problems = self._execute(cfg, key)
        with self.lock:
            self.done += 1
            n = self.done
        label = f"{cfg['method']} s={cfg['sparsity']} seed {cfg['seed']} {cfg['eval']}" + (
            f" [{cfg['extra']}]" if cfg["extra"] else "")
        if proc.returncode != 0 or problems:
            with self.lock:
                self.failed.append((label, proc.returncode,
                                    "; ".join(problems[:5]) + "\n" + proc.stdout[-2000:]))
            self._log(n, label, f"FAILED (exit {proc.returncode}), log {key}.log")
            return None
        entry = {"config": cfg, "binaries": self.bin_id, "wall_s": wall, "command": cmd,
                 "result": result}
        tmp = path + f".tmp{os.getpid()}.{threading.get_ident()}"
        with open(tmp, "w") as f:
            json.dump(entry, f)
        os.replace(tmp, path)
        with self.lock:
            self.fresh_runs += 1
        if self.hide_errors:
            self._log(n, label, f"done ({wall:.1f} s)")
            return entry
        self._log(n, label, f"{result['eval_set']} error {100 * result['test_err']:.2f}% "
                            f"sparsity {result['sparsity_achieved']:.4f} ({wall:.1f} s, "
                            f"libcsp {100 * result['time']['csp_share']:.2f}%)")
        return entry

    def run_all(self, cfgs):
        self.total = len(cfgs)
        self.done = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.jobs) as ex:
            return [e for e in ex.map(self.run, cfgs) if e is not None]
