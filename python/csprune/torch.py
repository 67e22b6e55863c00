"""csprune.torch: prune a ``torch.nn.Module`` during training with libcsp.

    import csprune.torch
    model = ...; opt = torch.optim.Adam(model.parameters(), 1e-3)
    pruner = csprune.torch.ModulePruner(model, opt, final_sparsity=0.9,
                                        begin_step=0, end_step=2000, frequency=50)
    for x, y in data:
        opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
        pruner.step()                      # after every optimizer.step()

Two ways to reach the weights (docs/python.md, "Devices and precision"):

- *in place*: CPU, contiguous, float32/float64 parameters are viewed by
  pointer (``tensor.data_ptr()``), never copied: libcsp writes the zeros into
  the parameters' own memory at every step;
- *staged*: parameters on any device (CUDA) or in float16/bfloat16. Their
  masks live on the parameter's device and are applied there with torch ops
  between events; at events the weights being decided (and the activation
  statistics, accumulated on the device) are copied into reused, pinned host
  buffers, libcsp decides in float32 (float64 for float64 parameters), and the
  new masks and corrected weights go back.

Gradients of pruned weights are masked before the optimizer (and gradient
clipping) sees them, by a gradient hook per parameter (``mask_gradients=``).
Under ``torch.distributed`` the activation statistics are all-reduced before
each event and the masks' digests compared across ranks after it.

CSP (compressed-sensing pruning) is chosen with ``sensing=`` and friends,
e.g. activation sensing, whose layer inputs the forward hooks feed:

    pruner = csprune.torch.ModulePruner(model, opt, final_sparsity=0.9, end_step=2000,
                                        granularity="row", sensing="activations",
                                        observe_window=20)
"""

import ctypes
import dataclasses
import fnmatch
import warnings
import weakref

import torch
from torch import nn

from ._core import (Context, CspError, Granularity, SensingKind, Status, c_int,
                    describe_buffer, refuse_while_running, to_enum)
from ._lib import lib
from . import _options
from . import _torch_taps as _taps
from ._pruner import Pruner
from ._schedule import Schedule

__all__ = ["ModulePruner", "EventInfo", "DEFAULT_COMPANION_KEYS", "default_include"]

#: Optimizer-state entries registered as companions when they have the
#: parameter's shape: SGD's momentum_buffer; Adam/AdamW's exp_avg, exp_avg_sq,
#: max_exp_avg_sq (amsgrad); RMSprop's square_avg, grad_avg; Adadelta's
#: acc_delta; Adagrad's sum; Adamax's exp_inf.
DEFAULT_COMPANION_KEYS = ("momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq",
                          "square_avg", "grad_avg", "acc_delta", "sum", "exp_inf")

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)
_EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)

_OVERRIDE_KEYS = {"sparsity", "nm", "prune"} | set(_options.TENSOR_KEYWORDS)

MODULE_STATE_FORMAT = "csprune.torch.ModulePruner"
#: version 3 adds "step" (the step counter); version 2 states load too
MODULE_STATE_VERSION = 3

_GRAD_MODES = ("hook", "call", "off")


def default_include(name, module, param):
    """The default choice of pruned parameters: weights of rank >= 2
    (Linear, Conv, LSTM/GRU matrices, attention projections, Embedding), never
    biases nor the parameters of normalisation layers."""
    leaf = name.rsplit(".", 1)[-1]
    return param.dim() >= 2 and "bias" not in leaf and not isinstance(module, _NORMS)


@dataclasses.dataclass(frozen=True)
class EventInfo:
    """What an event callback (``on_event``) receives after each pruning
    event: the step, the overall sparsity of the pruned parameters, every
    parameter's csp.TensorStats (``stats[i]`` is parameter ``names[i]``) and
    the pruner's csp.StepStats; ``pruner`` is the ModulePruner."""
    pruner: object
    step: int
    sparsity: float
    names: tuple
    stats: tuple
    step_stats: object

    def scalars(self, prefix="csp/"):
        """{tag: float} for a logging framework (TensorBoard's add_scalar,
        wandb.log, ...): the overall sparsity, the event's seconds, and each
        parameter's sparsity, target, weight_error and sensing_error."""
        out = {prefix + "sparsity": self.sparsity,
               prefix + "event_seconds": self.step_stats.last_event_seconds}
        for n, s in zip(self.names, self.stats):
            if s.excluded:
                continue
            out["%s%s/sparsity" % (prefix, n)] = s.achieved_sparsity
            out["%s%s/target" % (prefix, n)] = s.target_sparsity
            out["%s%s/weight_error" % (prefix, n)] = s.weight_error
            out["%s%s/sensing_error" % (prefix, n)] = s.sensing_error
        return out


class _Removable:
    def __init__(self, items, item):
        self._items, self._item = items, item

    def remove(self):
        if self._item in self._items:
            self._items.remove(self._item)


class _Entry:
    """One registered parameter."""
    __slots__ = ("name", "module", "pname", "param", "index", "excluded", "kind", "csp",
                 "ptr", "host", "pruned", "any_pruned", "acc", "acc_off", "since", "grad",
                 "hook", "__weakref__")

    def __init__(self, name, module, pname, param):
        self.name, self.module, self.pname, self.param = name, module, pname, param
        self.index = -1
        self.excluded = False
        self.kind = SensingKind.IDENTITY
        self.csp = False
        self.ptr = 0            # in place: the data_ptr() the library views
        self.host = None        # staged: the host buffer the library views
        self.pruned = None      # torch.bool, True = pruned, on the parameter's device
        self.any_pruned = False
        self.acc = None         # staged activations: (n*n + 1) float64 on the device
        self.acc_off = 0        # offset in the host statistics buffer
        self.since = 0          # rows observed since the last event
        self.grad = None        # in place, mask_gradients(): the library's gradient Tensor
        self.hook = None        # gradient hook handle


def _viewable(p):
    return (p.device.type == "cpu" and p.dtype in (torch.float32, torch.float64)
            and p.layout == torch.strided and p.is_contiguous() and p.numel() > 0)


def _int_of(d):
    return d - (1 << 64) if d >= (1 << 63) else d


class ModulePruner:
    """Prunes the weights of an ``nn.Module`` during training.

    @param model           The module, on any device (see ``staged``).
    @param optimizer       Its optimizer, or None. Its per-parameter state
                           (see DEFAULT_COMPANION_KEYS) is zeroed where the
                           weights are pruned. torch creates that state lazily
                           in the first optimizer.step(); step() registers
                           whatever state exists each time it is called (a
                           dictionary lookup per parameter), so state that
                           appears or is replaced later, e.g. by
                           optimizer.load_state_dict(), is followed too.
    @param schedule        A csp.Schedule (its context is used), a callable
                           ``step -> target`` (needs final_sparsity), or None:
                           polynomial from initial_sparsity to final_sparsity
                           over begin_step..end_step (exponent 3: Zhu & Gupta),
                           or constant final_sparsity when end_step is None
                           (one-shot pruning at begin_step: a warning says so;
                           pass end_step=-1 to mean it).
    @param granularity     Default Granularity ("tensor", "row", "global", "nm").
    @param nm              Default (N, M) for "nm".
    @param overrides       {name or fnmatch pattern: {key: value}} with keys
                           sparsity (alias final_sparsity), granularity, group,
                           nm, exclude (registered, never pruned), prune (True
                           forces a parameter in, False leaves it out), and
                           every per-tensor option of csp.Pruner.add_tensor()
                           (sensing, solver, correction, sensing_damping, ...;
                           docs/options.md). Later patterns win; an exact name
                           wins over patterns; a pattern that matches nothing
                           is an error.
    @param include         ``include(name, module, param) -> bool``: the
                           parameters to prune (default: default_include).
    @param companion_keys  Optimizer-state keys registered as companions.
    @param options         The options of csp.Pruner (docs/options.md: sensing,
                           solver, correction, sensing_damping, solver_tol,
                           ..., and the experimental ones; absent: the
                           library's default, GMP). CSP needs granularity
                           "row". With a CSP sensing, nn.Embedding weights are
                           pruned by magnitude (sensing "identity") unless an
                           override says otherwise.
    @param observe         Forward hooks that feed each weight the inputs it
                           multiplies (nn.Linear, nn.Conv1d/Conv2d, every
                           layer and direction of nn.LSTM/GRU/RNN,
                           nn.MultiheadAttention): True installs them, False
                           never (feed observe() yourself), None (default)
                           when some parameter has activations sensing or an
                           observer is given. A parameter with activations
                           sensing that no hook can feed is a ValueError.
    @param observer        ``observer(name, x)`` called with every observed
                           input matrix (rows x cols), for inspection.
    @param staged          None (default): parameters that cannot be viewed
                           in place (another device, float16/bfloat16, not
                           contiguous) make the pruner staged; True: staged
                           whatever the parameters (the device code path, e.g.
                           to test it on the CPU); False: such parameters are
                           an error.
    @param pin_memory      Staged host buffers in pinned memory (None: when
                           some parameter is on a CUDA device).
    @param mask_gradients  "hook" (default): a gradient hook per parameter
                           masks the gradients of pruned weights as backward()
                           produces them, so clip_grad_norm_ and the optimizer
                           see them masked; "call": no hooks, call
                           mask_gradients() after backward(); "off" (or
                           False): gradients are not masked.
    @param process_group   torch.distributed group whose ranks prune the same
                           model (data parallel): activation statistics are
                           all-reduced before each event and the mask digests
                           compared after it (RuntimeError on mismatch). None
                           (default): the default group when torch.distributed
                           is initialised with more than one rank; False: none.
    @param on_event        A callable, or a list of them, called as fn(info)
                           with an EventInfo after every pruning event
                           (add_event_callback() adds more).
    @param ctx             A csp.Context; default: a new one made with seed
                           and num_threads, owned and closed by this object.
    """

    def __init__(self, model, optimizer=None, schedule=None, *, final_sparsity=None,
                 begin_step=0, end_step=None, frequency=100, initial_sparsity=0.0,
                 exponent=3.0, granularity=Granularity.TENSOR, nm=None, overrides=None,
                 include=default_include, companion_keys=DEFAULT_COMPANION_KEYS,
                 observe=None, observer=None, staged=None, pin_memory=None,
                 mask_gradients="hook", process_group=None, on_event=None, ctx=None,
                 seed=0, num_threads=1, **options):
        if not isinstance(model, nn.Module):
            raise TypeError("model must be a torch.nn.Module, not %s" % type(model).__name__)
        if mask_gradients is False or mask_gradients is None:
            mask_gradients = "off"
        if mask_gradients is True:
            mask_gradients = "hook"
        if mask_gradients not in _GRAD_MODES:
            raise ValueError("mask_gradients must be one of %s, not %r"
                             % (", ".join(_GRAD_MODES), mask_gradients))
        if staged not in (None, True, False):
            raise TypeError("staged must be None, True or False, not %r" % (staged,))
        self.model = model
        self.optimizer = optimizer
        self.companion_keys = tuple(companion_keys)
        self.grad_mode = mask_gradients
        self._hooks = []
        self._owned_ctx = None
        self._owned_schedule = None
        self._pruner = None
        self._entries = []
        self._companions = {}    # (index, key) -> csp.Tensor (in place) or tensor (staged)
        self._step = 0
        self._last = None        # the last step() applied
        self._gate = (None, False)  # (step, hooks active) for the forward passes of a step
        self._callbacks = []
        if on_event is not None:
            for fn in (on_event if isinstance(on_event, (list, tuple)) else [on_event]):
                self.add_event_callback(fn)
        self._group = self._process_group(process_group)

        if isinstance(schedule, Schedule):
            if ctx is not None and ctx is not schedule.ctx:
                raise ValueError("the schedule belongs to another context than ctx")
            ctx = schedule.ctx
        if ctx is None:
            ctx = self._owned_ctx = Context(seed=seed, num_threads=num_threads)
        self.ctx = ctx
        own_schedule = not isinstance(schedule, Schedule)
        try:
            sched = self._make_schedule(schedule, ctx, final_sparsity, begin_step, end_step,
                                        frequency, initial_sparsity, exponent)
            #: the csp.Schedule (target(step), events(...)); closed with this
            #: object when it was made here
            self.schedule = sched
            self._owned_schedule = sched if own_schedule else None
            self._pruner = Pruner(ctx, sched, granularity=granularity, nm=nm, **options)
            chosen = self._choose(include, overrides or {}, options)
            self.staged = bool(staged) if staged is not None else \
                any(not _viewable(e.param) for e, _ in chosen)
            if staged is False:
                for e, _ in chosen:
                    try:
                        describe_buffer(e.param)
                    except (TypeError, ValueError) as err:
                        raise type(err)("parameter %s: %s (staged=False)"
                                        % (e.name, err)) from None
            self.pin_memory = (any(e.param.device.type == "cuda" for e, _ in chosen)
                               and torch.cuda.is_available()) if pin_memory is None \
                else bool(pin_memory)
            for e, opts in chosen:
                self._add(e, opts)
            self._setup_buffers()
            self._sync()  # optimizer state that already exists (e.g. loaded)
            self._observer = observer
            #: rows fed to observe() per parameter name
            self.observed_rows = {n: 0 for n in self.names}
            #: registered weights whose inputs no forward hook sees
            self.unobserved = []
            if observe is None:
                observe = observer is not None or bool(self._activations())
            if observe:
                self._install_hooks()
            if self.grad_mode == "hook":
                self._install_grad_hooks()
        except BaseException:
            self._close()  # what was made here is in no running libcsp call
            raise

    # --- construction --------------------------------------------------------------

    @staticmethod
    def _process_group(pg):
        if pg is False:
            return None
        dist = torch.distributed
        if pg is None:
            if not (dist.is_available() and dist.is_initialized()):
                return None
            if dist.get_world_size() < 2:
                return None
            return dist.group.WORLD
        if not (dist.is_available() and dist.is_initialized()):
            raise ValueError("process_group given, but torch.distributed is not initialised")
        return pg

    @staticmethod
    def _make_schedule(schedule, ctx, final_sparsity, begin_step, end_step, frequency,
                       initial_sparsity, exponent):
        if isinstance(schedule, Schedule):
            return schedule
        if callable(schedule):
            if final_sparsity is None:
                raise ValueError("a callback schedule needs final_sparsity")
            return Schedule.callback(ctx, schedule, final_sparsity, begin_step=begin_step,
                                     end_step=-1 if end_step is None else end_step,
                                     frequency=frequency)
        if schedule is not None:
            raise TypeError("schedule must be a csp.Schedule, a callable or None, not %s"
                            % type(schedule).__name__)
        if final_sparsity is None:
            raise ValueError("give final_sparsity (and end_step for a ramp), or a schedule")
        if end_step is None or end_step == -1:
            if end_step is None and final_sparsity > 0:
                warnings.warn(
                    "csprune.torch.ModulePruner: no end_step, so the schedule is constant: "
                    "the first step() at step %d prunes to %g at once (one-shot pruning of "
                    "an untrained model, rarely what is meant); give end_step= for a "
                    "gradual ramp, or end_step=-1 to mean one-shot"
                    % (begin_step, final_sparsity), UserWarning, stacklevel=3)
            return Schedule.constant(ctx, final_sparsity, begin_step=begin_step,
                                     frequency=frequency)
        return Schedule.polynomial(ctx, final_sparsity, begin_step=begin_step,
                                   end_step=end_step, initial_sparsity=initial_sparsity,
                                   exponent=exponent, frequency=frequency)

    def _choose(self, include, overrides, options):
        """[(entry, options)] of the parameters to register, in module order."""
        for key, opts in overrides.items():
            bad = set(opts) - _OVERRIDE_KEYS
            if bad:
                raise ValueError("override %r: unknown keys %s (known: %s)"
                                 % (key, sorted(bad), sorted(_OVERRIDE_KEYS)))
        wide_sensing = to_enum(SensingKind, options["sensing"], "sensing") \
            if options.get("sensing") is not None else SensingKind.IDENTITY
        used, seen, chosen = set(), set(), []
        for mname, module in self.model.named_modules():
            for pname, param in module.named_parameters(recurse=False):
                if id(param) in seen:  # shared (tied) parameters once
                    continue
                seen.add(id(param))
                name = "%s.%s" % (mname, pname) if mname else pname
                opts = {}
                for key, o in overrides.items():
                    if key != name and fnmatch.fnmatchcase(name, key):
                        opts.update(o)
                        used.add(key)
                if name in overrides:
                    opts.update(overrides[name])
                    used.add(name)
                # Patterns only tune the parameters chosen by include(); an
                # exact name chooses its parameter, and prune= decides alone.
                wanted = opts.pop("prune", None)
                if wanted is None:
                    wanted = name in overrides or include(name, module, param)
                if not wanted:
                    continue
                if (isinstance(module, _EMBEDDINGS) and "sensing" not in opts
                        and wide_sensing != SensingKind.IDENTITY):
                    opts["sensing"] = SensingKind.IDENTITY  # indices in: by magnitude
                chosen.append((_Entry(name, module, pname, param), opts))
        unused = set(overrides) - used
        if unused:
            raise ValueError("overrides match no parameter: %s (parameters: %s)"
                             % (sorted(unused), ", ".join(n for n, _ in
                                                          self.model.named_parameters())))
        for e, opts in chosen:
            self._check_granularity(e.name, opts, options)
        return chosen

    def _check_granularity(self, name, opts, options):
        """CSP works row by row (ROW, or N:M inside each row): say so in
        Python terms before the library refuses the tensor."""
        sensing = opts.get("sensing", options.get("sensing"))
        if sensing is None:
            return
        kind = to_enum(SensingKind, sensing, "sensing")
        if kind == SensingKind.IDENTITY or opts.get("exclude"):
            return
        gran = to_enum(Granularity, opts.get("granularity", self._pruner.granularity),
                       "granularity")
        if gran not in (Granularity.ROW, Granularity.NM):
            raise ValueError(
                "parameter %s: sensing=%r is compressed-sensing pruning, which decides each "
                "row of the weight matrix on its own and so needs granularity='row' (or 'nm'), "
                "not %r; "
                "pass granularity='row' to ModulePruner (or {'granularity': 'row'} for this "
                "parameter in overrides), or prune it by magnitude (overrides={%r: "
                "{'sensing': 'identity'}})" % (name, kind.name.lower(), gran.name.lower(), name))

    def _add(self, e, opts):
        p = e.param
        if self.staged:
            if p.device.type == "meta":
                raise ValueError("parameter %s: it is on device 'meta', which holds no data; "
                                 "materialise the model first" % e.name)
            if not p.is_floating_point():
                raise TypeError("parameter %s: libcsp prunes floating-point weights, not %s"
                                % (e.name, p.dtype))
            if p.numel() == 0:
                raise ValueError("parameter %s: the tensor is empty" % e.name)
            dtype = torch.float64 if p.dtype == torch.float64 else torch.float32
            e.host = torch.empty(p.shape, dtype=dtype, pin_memory=self.pin_memory)
            with torch.no_grad():
                e.host.copy_(p.detach())
            view = e.host
        else:
            try:
                e.ptr = describe_buffer(p)[0]
            except (TypeError, ValueError) as err:
                raise type(err)(
                    "parameter %s: %s (or let the pruner stage it: staged=None)"
                    % (e.name, err)) from None
            view = p
        opts = dict(opts)
        sparsity = opts.pop("sparsity", None)
        if sparsity is not None:
            opts["final_sparsity"] = sparsity
        opts["exclude"] = bool(opts.get("exclude", False))
        try:
            e.index = self._pruner.add_tensor(view, e.name, **opts)
        except CspError as err:
            raise CspError(err.status, "parameter %s: %s" % (e.name, err.message)) from err
        except (TypeError, ValueError) as err:
            raise type(err)("parameter %s: %s" % (e.name, err)) from None
        e.excluded = opts["exclude"]
        e.kind = self._pruner.sensing_kind(e.index)
        e.csp = e.kind != SensingKind.IDENTITY and not e.excluded
        if self.staged and e.csp and self._pruner.experimental("shrink", e.index) > 0:
            raise ValueError(
                "parameter %s: shrink (between-event shrink) rewrites the weights at every "
                "step, which a staged pruner does only at events (it would cost a host copy "
                "per step); leave shrink at 0 here" % e.name)
        self._entries.append(e)

    def _setup_buffers(self):
        """Device masks, activation accumulators and the reused host buffers."""
        pin = self.pin_memory
        need_masks = self.staged  # in place: the library's bit masks serve
        biggest = 0
        stat_len = 0
        for e in self._entries:
            if e.excluded:
                continue
            if need_masks:
                e.pruned = torch.zeros(e.param.shape, dtype=torch.bool, device=e.param.device)
            biggest = max(biggest, e.param.numel())
            if e.kind == SensingKind.ACTIVATIONS:
                n = self._pruner.tensor(e.index).cols
                e.acc_off = stat_len
                stat_len += n * n + 1
                if self.staged:
                    e.acc = torch.zeros(n * n + 1, dtype=torch.float64, device=e.param.device)
        # mask bytes of one parameter at a time (staged), statistics of all
        self._mask_host = torch.empty(biggest if self.staged else 0, dtype=torch.uint8,
                                      pin_memory=pin and biggest > 0)
        self._stat_host = torch.zeros(stat_len, dtype=torch.float64,
                                      pin_memory=pin and stat_len > 0)
        self._stat_tmp = None

    @property
    def names(self):
        """Registered parameter names, by index."""
        return [e.name for e in self._entries]

    @property
    def _params(self):
        return [e.param for e in self._entries]

    def _entry(self, name):
        if isinstance(name, str):
            for e in self._entries:
                if e.name == name:
                    return e
            raise KeyError("no registered parameter %r (registered: %s)"
                           % (name, ", ".join(self.names)))
        return self._entries[self._live()._index(name)]

    # --- following the host --------------------------------------------------------

    def _check_params(self):
        """A parameter replaced by a new object would leave the pruner pruning
        a detached tensor: refuse. Follow parameters given new memory (in
        place: re-point the view) or moved (staged: move the masks)."""
        for e in self._entries:
            live = e.module._parameters.get(e.pname)
            if live is not e.param:
                raise RuntimeError(
                    "csprune.torch.ModulePruner: parameter %s was replaced by another object "
                    "(e.g. module.%s = nn.Parameter(...)), so the pruner would go on pruning "
                    "the old, detached tensor; change a parameter in place (p.data = ... or "
                    "p.copy_(...)), or build a new ModulePruner (and load_state_dict() the "
                    "old one's state) after replacing it" % (e.name, e.pname))
            p = e.param
            if self.staged:
                if p.shape != e.host.shape:
                    raise ValueError("parameter %s changed shape from %s to %s"
                                     % (e.name, tuple(e.host.shape), tuple(p.shape)))
                if e.pruned is not None and e.pruned.device != p.device:
                    e.pruned = e.pruned.to(p.device)
                    if e.acc is not None:
                        e.acc = e.acc.to(p.device)
            elif p.data_ptr() != e.ptr:
                if not _viewable(p):
                    raise ValueError(
                        "parameter %s is now %s on %s, which the pruner (made in place, for "
                        "CPU float32/float64 contiguous parameters) cannot view; build the "
                        "ModulePruner after moving or casting the model (model.to(...)), or "
                        "with staged=True" % (e.name, p.dtype, p.device))
                try:
                    self._pruner.tensor(e.index).set_data(p)
                except (TypeError, ValueError) as err:
                    raise type(err)("parameter %s changed: %s" % (e.name, err)) from None
                e.ptr = p.data_ptr()
                if e.pruned is not None and e.pruned.shape != p.shape:
                    e.pruned = e.pruned.reshape(p.shape)

    def _sync(self):
        """Register optimizer state as companions (lazily created, or replaced
        by load_state_dict): in the library (in place), or kept here and
        masked with torch ops (staged)."""
        if self.optimizer is None:
            return
        state = self.optimizer.state
        for e in self._entries:
            if e.excluded:
                continue
            st = state.get(e.param)
            if not st:
                continue
            for key in self.companion_keys:
                buf = st.get(key)
                if not isinstance(buf, torch.Tensor) or buf.shape != e.param.shape:
                    continue
                k = (e.index, key)
                if self.staged:
                    if buf.device != e.param.device:
                        raise ValueError("optimizer state %r of %s is on %s, the parameter on "
                                         "%s" % (key, e.name, buf.device, e.param.device))
                    self._companions[k] = buf
                    continue
                t = self._companions.get(k)
                try:
                    if t is None:
                        self._companions[k] = self._pruner.add_companion(
                            e.index, buf, "%s:%s" % (e.name, key))
                    elif t.buffer is not buf or t.data_ptr != buf.data_ptr():
                        t.set_data(buf)
                except (TypeError, ValueError) as err:
                    raise type(err)("optimizer state %r of %s: %s"
                                    % (key, e.name, err)) from None

    # --- training ----------------------------------------------------------------------

    def step(self, step=None):
        """Call right after every ``optimizer.step()``. ``step`` is the number
        of optimizer updates done before this one (0 at the first call; by
        default counted here). Returns csp.Status.PRUNED at pruning events,
        else csp.Status.MASKED; pruned weights and their optimizer state are
        exactly zero afterwards. A step before the last one is refused
        (CspError E_STATE) with nothing changed."""
        self._refuse_while_running("ModulePruner.step()")
        if step is None:
            step = self._step
        step = c_int(step, "int64", "step", "ModulePruner.step")
        p = self._live()
        if self._last is not None and step < self._last:
            raise CspError(Status.E_STATE, "ModulePruner.step(): step %d is before the last "
                           "step %d" % (step, self._last))
        self._check_params()
        self._sync()
        due = self._event_due(step)
        if due:
            status = self._event(step)
        elif self.staged:
            self._mask_on_device()
            status = Status.MASKED
        else:
            status = p.step(step)
            if status == Status.PRUNED:  # (the schedule said otherwise: follow the library)
                self._refresh_masks()
        self._last = step
        self._step = step + 1
        if status == Status.PRUNED:
            self._after_event(step)
        return status

    @property
    def last_step(self):
        """The last step() applied, or None before the first (a staged
        pruner calls the library at events only: its pruner.last_step is the
        last event's)."""
        self._live()
        return self._last

    def _event_due(self, step):
        last = self._live().last_step
        nxt = self.schedule.next_event(-1 if last is None else last)
        return nxt is not None and nxt <= step

    def _event(self, step):
        p = self._live()
        restore = self._gather_statistics(reduce=True)
        try:
            if self.staged:
                with torch.no_grad():
                    for e in self._entries:
                        if not e.excluded:
                            e.host.copy_(e.param.detach())
            status = p.step(step)
        except CspError as err:
            if restore is not None:
                restore()
            better = self._explain(err)
            if better is err:
                raise
            raise better from err
        for e in self._entries:
            e.since = 0
        self._refresh_masks()
        if self.staged:
            with torch.no_grad():
                for e in self._entries:
                    if e.excluded:
                        continue
                    if e.csp:  # corrected weights come back
                        e.param.detach().copy_(e.host)
                    elif e.any_pruned:
                        e.param.detach().masked_fill_(e.pruned, 0)
                self._mask_companions()
        return status

    def _explain(self, err):
        starved = [e.name for e in self._entries
                   if e.kind == SensingKind.ACTIVATIONS and not e.excluded and e.since == 0]
        if err.status != Status.E_STATE or not starved:
            return err
        return CspError(err.status, "%s; no activations of %s were observed since the last "
                        "event: the forward hooks observe training-mode passes (model.train())"
                        " of the observe_window steps before each event" %
                        (err.message, ", ".join(starved)))

    def _mask_on_device(self):
        with torch.no_grad():
            for e in self._entries:
                if e.any_pruned:
                    e.param.detach().masked_fill_(e.pruned, 0)
            self._mask_companions()

    def _mask_companions(self):
        if not self.staged:
            return
        for (i, _), buf in self._companions.items():
            e = self._entries[i]
            if e.any_pruned:
                buf.masked_fill_(e.pruned, 0)

    def _refresh_masks(self):
        """The library's masks into the torch masks (after an event or a load)."""
        p = self._live()
        h = p._live()
        for e in self._entries:
            if e.excluded:
                continue
            n = e.param.numel()
            e.any_pruned = p.nnz(e.index) < n
            if e.pruned is None:
                continue
            if self.staged:
                buf = self._mask_host[:n]
                ptr = buf.data_ptr()
            else:
                buf = e.pruned
                ptr = e.pruned.data_ptr()
            st = lib.csp_pruner_mask_bytes(h, e.index, ctypes.cast(ptr, ctypes.POINTER(
                ctypes.c_uint8)), n)
            if st < 0:
                raise CspError(st, self.ctx.last_error)
            if self.staged:
                e.pruned.copy_(buf.view(torch.bool).view(e.pruned.shape))
            e.pruned.logical_not_()

    def _after_event(self, step):
        if self._group is not None:
            self._check_agreement(step)
        if self._callbacks:
            p = self._live()
            info = EventInfo(pruner=self, step=step, sparsity=self.sparsity(),
                             names=tuple(self.names), stats=tuple(p.stats()),
                             step_stats=p.step_stats())
            for fn in list(self._callbacks):
                fn(info)

    def add_event_callback(self, fn):
        """Call ``fn(info)`` (an EventInfo) after every pruning event, e.g.
        ``lambda info: writer.add_scalars("csp", info.scalars(""), info.step)``.
        It runs after the step, outside any libcsp call (it may do anything).
        Returns a handle whose remove() takes it away."""
        if not callable(fn):
            raise TypeError("the event callback must be callable, not %s" % type(fn).__name__)
        self._callbacks.append(fn)
        return _Removable(self._callbacks, fn)

    # --- gradients ------------------------------------------------------------------------

    def _install_grad_hooks(self):
        """A gradient hook per pruned parameter returns its gradient with the
        pruned entries zero (hooks must not write their argument): staged,
        masked_fill with the device mask; in place, a copy masked by the
        library's bit mask (csp_pruner_apply_mask(): +0, whole words of ones
        skipped)."""
        for e in self._entries:
            if e.excluded or not e.param.requires_grad:
                continue
            me_ref, ref = weakref.ref(e), weakref.ref(self)

            def hook(g, me_ref=me_ref, ref=ref):
                me, mp = me_ref(), ref()
                if me is None or mp is None or mp.closed or not me.any_pruned:
                    return None
                if me.pruned is not None:
                    return g.masked_fill(me.pruned, 0)
                out = g.to(dtype=me.param.dtype, memory_format=torch.contiguous_format,
                           copy=True)
                mp._pruner.apply_mask(me.index, out)
                return out
            e.hook = e.param.register_hook(hook)

    def mask_gradients(self):
        """Zero the gradients (``p.grad``) of pruned weights: call after
        backward(), before clipping and optimizer.step(), when the pruner was
        made with mask_gradients="call" (with the default "hook" they are
        masked already; calling it again changes nothing)."""
        self._refuse_while_running("ModulePruner.mask_gradients()")
        p = self._live()
        self._check_params()
        use_lib = False
        with torch.no_grad():
            for e in self._entries:
                g = e.param.grad
                if e.excluded or g is None:
                    continue
                if e.pruned is not None:
                    if e.any_pruned:
                        g.masked_fill_(e.pruned, 0)
                    continue
                # in place without torch masks: the library's gradient masking
                if e.grad is None:
                    e.grad = p.add_gradient(e.index, g, "%s:grad" % e.name)
                elif e.grad.buffer is not g or e.grad.data_ptr != g.data_ptr():
                    e.grad.set_data(g)
                use_lib = True
        if use_lib:
            p.mask_gradients()

    # --- activation sensing -------------------------------------------------------------

    def _activations(self):
        """Indices of the parameters whose sensing is activations."""
        return [e.index for e in self._entries
                if e.kind == SensingKind.ACTIVATIONS and not e.excluded]

    def wants_observe(self, step=None):
        """Should the forward pass of ``step`` (default: the coming one, the
        pass whose update the next step() call follows) observe activations?
        csp.Pruner.wants_observe: True when some parameter has activations
        sensing and the next event is within observe_window steps."""
        return self._live().wants_observe(self._step if step is None else step)

    def observe(self, name, x):
        """Feed the inputs ``x`` (rows x cols, cols = the weight's columns) of
        the layer owning parameter ``name`` to activation sensing, and to the
        ``observer`` callback.

        In place: the library's csp_pruner_observe() (S += x^T x, N += rows)
        on a float32 contiguous CPU copy when ``x`` is not one already (a copy
        of the input, never of a parameter). Staged: S and N accumulate on the
        parameter's device in float64 (x converted there), and cross to the
        host at the next event. The forward hooks call this; call it yourself
        for layers they do not see (observe=False, or ``unobserved``)."""
        p = self._live()
        e = self._entry(name)
        x = x.detach()
        if x.device.type == "meta":
            raise ValueError("observe(%s): the inputs are on device 'meta', which holds no data"
                             % e.name)
        cols = p.tensor(e.index).cols
        if x.dim() != 2 or x.shape[1] != cols:
            raise ValueError("observe(%s): expected rows x %d, got %s"
                             % (e.name, cols, tuple(x.shape)))
        if e.kind == SensingKind.ACTIVATIONS and not e.excluded:
            if self.staged:
                xd = x.to(device=e.acc.device, dtype=torch.float64)
                e.acc[:-1].view(cols, cols).addmm_(xd.t(), xd)
                e.acc[-1:].add_(x.shape[0])
            else:
                if x.device.type != "cpu":
                    x = x.cpu()
                if x.dtype != torch.float32 or not x.is_contiguous():
                    x = x.to(torch.float32).contiguous()
                try:
                    p.observe(e.index, x)
                except CspError as err:
                    raise CspError(err.status, "observe(%s): %s" % (e.name, err.message)) \
                        from err
            e.since += x.shape[0]
        self.observed_rows[e.name] += x.shape[0]
        if self._observer is not None:
            self._observer(e.name, x)

    def _gather_statistics(self, reduce):
        """Move the activation statistics where the library uses them: the
        device accumulators (staged) added to the library's, summed over the
        ranks when @p reduce and a process group is set. Returns a function
        that puts this rank's own sums back (for a failed event), or None
        when nothing was done."""
        acts = [e for e in self._entries
                if e.kind == SensingKind.ACTIVATIONS and not e.excluded]
        dist_on = reduce and self._group is not None
        if not acts or not (self.staged or dist_on):
            return None
        p = self._live()
        H = self._stat_host
        with torch.no_grad():
            for e in acts:
                n = p.tensor(e.index).cols
                seg = H[e.acc_off:e.acc_off + n * n + 1]
                p.sensing(e.index).read_accumulator(seg)
                if self.staged:
                    seg.add_(e.acc.to("cpu", non_blocking=False))
                    e.acc.zero_()
        local = H.clone() if dist_on else None
        if dist_on:
            self._all_reduce(H)

        def write(buf):
            for e in acts:
                n = p.tensor(e.index).cols
                p.sensing(e.index).write_accumulator(buf[e.acc_off:e.acc_off + n * n + 1])
        write(H)
        return (lambda: write(local)) if dist_on else None

    # --- data parallel --------------------------------------------------------------------

    def _collective_device(self):
        dist = torch.distributed
        if dist.get_backend(self._group) == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def _all_reduce(self, buf):
        dist = torch.distributed
        dev = self._collective_device()
        t = buf if dev.type == "cpu" else buf.to(dev)
        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=self._group)
        if t is not buf:
            buf.copy_(t)

    def _check_agreement(self, step):
        dist = torch.distributed
        dev = self._collective_device()
        mine = torch.tensor([_int_of(self.digest())], dtype=torch.int64, device=dev)
        world = dist.get_world_size(self._group)
        got = [torch.zeros_like(mine) for _ in range(world)]
        dist.all_gather(got, mine, group=self._group)
        digests = [int(t.item()) & ((1 << 64) - 1) for t in got]
        if len(set(digests)) > 1:
            raise RuntimeError(
                "csprune.torch.ModulePruner: the ranks' masks differ after the event at step "
                "%d (digests %s): the replicas did not prune the same weights. Their weights "
                "or their pruners differ (same model, optimizer, seed and options on every "
                "rank? is the model wrapped in DistributedDataParallel, so that gradients "
                "are averaged?)" % (step, ", ".join("rank %d %016x" % (r, d)
                                                    for r, d in enumerate(digests))))

    def _install_hooks(self):
        ref = weakref.ref(self)

        def active():
            me = ref()
            return me is not None and not me.closed and me._hooks_active()

        def feed(name, x):
            me = ref()
            if me is not None and not me.closed:
                me.observe(name, x)

        registered = {e.name for e in self._entries if not e.excluded}
        acts = {self._entries[i].name for i in self._activations()}
        everything = self._observer is not None or not acts
        fed, why = set(), {}
        skip = set()  # Linear modules that belong to an attention module
        for mname, module in self.model.named_modules():
            if isinstance(module, nn.MultiheadAttention):
                skip.add(id(module.out_proj))
        for mname, module in self.model.named_modules():
            if id(module) in skip:
                continue
            prefix = mname + "." if mname else ""
            ok, reasons = _taps.servable(module, prefix)
            why.update(reasons)
            targets = {n: None for n in ok if n in registered and (everything or n in acts)}
            if targets:
                fed.update(targets)
                self._hooks.append(_taps.install(module, prefix, targets, active, feed))
        starved = [n for n in self.names if n in acts and n not in fed]
        if starved:
            raise ValueError(
                "activations sensing needs the inputs of %s, which no forward hook sees (%s); "
                "give them another sensing, e.g. overrides={%r: {'sensing': 'gaussian'}} "
                "(or 'identity', by magnitude), or pass observe=False and call observe() "
                "yourself" % (", ".join(starved), "; ".join(
                    "%s: %s" % (n, why.get(n, "hooks feed nn.Linear, nn.Conv1d/2d, "
                                "nn.LSTM/GRU/RNN and nn.MultiheadAttention weights"))
                    for n in starved), starved[0]))
        self.unobserved = [n for n in self.names if n in registered and n not in fed]
        if acts and not self.model.training:
            warnings.warn("csprune.torch.ModulePruner: the model is in eval() mode, and the "
                          "forward hooks observe training-mode passes only: call model.train() "
                          "before training, or the first event finds no activations",
                          UserWarning, stacklevel=3)
        if self.unobserved and not acts and self._observer is not None:
            warnings.warn("csprune.torch: the inputs of %s are not visible to a forward hook; "
                          "they are not observed" % ", ".join(self.unobserved), stacklevel=3)

    def _hooks_active(self):
        """Do the forward hooks work in this step's passes? With activation
        sensing, when wants_observe() says so (asked once per step); without
        it, when an observer is there to see the inputs."""
        step = self._step
        if self._gate[0] != step:
            p = self._live()
            active = p.wants_observe(step) if self._activations() else \
                self._observer is not None
            self._gate = (step, active)
        return self._gate[1]

    # --- reading ------------------------------------------------------------------------

    @property
    def pruner(self):
        """The underlying csp.Pruner."""
        return self._live()

    def mask(self, name):
        """The mask of parameter ``name`` as a torch.bool tensor of its shape."""
        return torch.from_numpy(self._live().mask(self._entry(name).index))

    def masks(self):
        """{name: torch.bool mask} for every registered parameter."""
        return {n: self.mask(n) for n in self.names}

    def stats(self):
        """csp.TensorStats of every registered parameter."""
        return self._live().stats()

    def nnz(self, name=None):
        return self._live().nnz(None if name is None else self._entry(name).index)

    def sensing(self, name):
        """The sensing operator of parameter ``name`` (csp.Pruner.sensing: a
        borrowed view of the pruner's own, e.g. to all-reduce an activations
        accumulator; None for GMP parameters)."""
        return self._live().sensing(self._entry(name).index)

    def step_stats(self):
        """csp.StepStats of the whole pruner."""
        return self._live().step_stats()

    def sparsity(self):
        """Fraction of zeros over the pruned (non-excluded) parameters."""
        total = kept = 0
        for s in self._live().stats():
            if not s.excluded:
                total += s.numel
                kept += s.nnz
        return 1.0 - kept / total if total else 0.0

    def digest(self):
        """The masks' 64-bit digest: equal on data-parallel replicas that agree."""
        return self._live().digest()

    # --- state ------------------------------------------------------------------------------

    def state_dict(self):
        """The pruner's state for torch.save next to the model's and
        optimizer's: ``{"format": "csprune.torch.ModulePruner", "version": 3,
        "names": [...], "step": int, "checkpoint": uint8 tensor}``, the
        checkpoint being the library's (csp.Pruner.save(): masks, schedule
        position, activation accumulators, ISTA/FISTA lambdas, statistics),
        ``names`` the registered parameters in order and ``step`` the step
        counter. A staged pruner first moves its device statistics into the
        library's accumulators (this rank's own: under data parallelism save
        each rank's state, or save outside the observation window). Plain
        data: torch.load(..., weights_only=True) reads it."""
        self._refuse_while_running("ModulePruner.state_dict()")
        p = self._live()
        if self.staged:
            self._gather_statistics(reduce=False)
        data = p.save()
        return {"format": MODULE_STATE_FORMAT, "version": MODULE_STATE_VERSION,
                "names": list(self.names), "step": self._step,
                "checkpoint": torch.frombuffer(bytearray(data), dtype=torch.uint8)}

    def load_state_dict(self, state):
        """Restore state_dict() into a ModulePruner built the same way (same
        parameters and options, same seed) on the model and optimizer whose
        state was saved with it; it may have stepped already. A dict that is
        not such a state is ValueError; a checkpoint the library refuses
        (corrupt, or of another configuration) is CspError with the library's
        message, and nothing changed. The step counter continues from the
        saved one (version 2 states: from the restored last step). Nothing is
        written to the parameters or the optimizer state here: the masks
        reach them at the next step() (a model saved with the pruner's state
        is already masked)."""
        self._refuse_while_running("ModulePruner.load_state_dict()")
        try:
            fmt, version = state.get("format"), state.get("version")
        except AttributeError:
            raise TypeError("a state must be a dict (from state_dict()), not %s"
                            % type(state).__name__) from None
        if fmt != MODULE_STATE_FORMAT or version not in (2, MODULE_STATE_VERSION):
            raise ValueError("not a %s state of version 2 or %d (format %r, version %r)"
                             % (MODULE_STATE_FORMAT, MODULE_STATE_VERSION, fmt, version))
        if "checkpoint" not in state:
            raise ValueError("the %s state has no checkpoint" % MODULE_STATE_FORMAT)
        data = state["checkpoint"]
        step = state.get("step") if version >= 3 else None
        if version >= 3 and (not isinstance(step, int) or isinstance(step, bool) or step < 0):
            raise ValueError("the state's step must be a non-negative int, not %r" % (step,))
        if isinstance(data, torch.Tensor):
            if data.dtype != torch.uint8 or data.dim() != 1 or data.device.type != "cpu":
                raise ValueError("the checkpoint must be a 1-D CPU uint8 tensor, not %s %s on %s"
                                 % (data.dtype, tuple(data.shape), data.device))
            data = data.contiguous().numpy()
        p = self._live()
        try:
            p.load(data)
        except CspError as e:
            names = state.get("names")
            if names is None or list(names) == self.names:
                raise
            raise CspError(e.status, "%s (the state is of parameters %s; this pruner has %s)"
                           % (e.message, list(names), self.names)) from e
        last = p.last_step
        if step is None:
            step = 0 if last is None else last + 1
        self._step = step
        self._last = None if step == 0 else step - 1
        if last is not None and self._last is not None and last > self._last:
            self._last = last
        self._gate = (None, False)
        with torch.no_grad():
            for e in self._entries:
                e.since = 0
                if e.acc is not None:
                    e.acc.zero_()
        self._refresh_masks()

    def summary(self):
        """A per-parameter table (a str: print(pruner.summary())): shape,
        device and dtype, granularity, sensing, the last event's target, the
        sparsity reached and the kept weights, then the total."""
        p = self._live()
        rows = [("parameter", "shape", "device/dtype", "granularity", "sensing", "target",
                 "sparsity", "kept")]
        for e, s in zip(self._entries, p.stats()):
            dev = "%s/%s" % (e.param.device, str(e.param.dtype).replace("torch.", ""))
            rows.append((e.name, "x".join(str(d) for d in e.param.shape), dev,
                         "excluded" if s.excluded else s.granularity.name.lower(),
                         "-" if s.excluded else s.sensing.name.lower(),
                         "%.3f" % s.target_sparsity, "%.3f" % s.achieved_sparsity,
                         "%d/%d" % (s.nnz, s.numel)))
        total = sum(s.numel for s in p.stats() if not s.excluded)
        kept = sum(s.nnz for s in p.stats() if not s.excluded)
        rows.append(("total", "", "staged" if self.staged else "in place", "", "", "",
                     "%.3f" % self.sparsity(), "%d/%d" % (kept, total)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = []
        for k, r in enumerate(rows):
            cells = [c.ljust(w) if i < 5 else c.rjust(w) for i, (c, w) in
                     enumerate(zip(r, widths))]
            lines.append("  ".join(cells).rstrip())
            if k == 0 or k == len(rows) - 2:
                lines.append("-" * len(lines[0]))
        last = p.last_step
        lines.append("step %d, last event %s" % (self._step, p.step_stats().last_event
                                                 if last is not None else None))
        return "\n".join(lines)

    # --- lifetime ---------------------------------------------------------------------------

    def _live(self):
        if self._pruner is None or self._pruner.closed:
            raise ValueError("ModulePruner is closed")
        return self._pruner

    @property
    def closed(self):
        return self._pruner is None or self._pruner.closed

    def _refuse_while_running(self, what):
        refuse_while_running((self._pruner, self._owned_schedule, self._owned_ctx), what)

    def close(self):
        """Remove the hooks and free the library objects (the model and the
        optimizer are untouched). Idempotent. Refused (CspError E_STATE),
        with nothing changed, from inside a callback of the pruner's context
        (a callable schedule, a step callback, a log hook): close it after
        the call returns."""
        self._refuse_while_running("ModulePruner.close()")
        self._close()

    def _close(self):
        for h in self._hooks:
            h.remove()
        self._hooks = []
        for e in self._entries:
            if e.hook is not None:
                e.hook.remove()
                e.hook = None
        for obj in (self._pruner, self._owned_schedule, self._owned_ctx):
            if obj is not None:
                obj._close()

    # A copy would share the pruner (closing either closes both) and its hooks.
    def _no_copy(self):
        return TypeError("csprune.torch.ModulePruner cannot be copied or pickled: it owns a "
                         "libcsp pruner over the model's own parameters, which a copy would "
                         "share; build a new ModulePruner over the copied model (and its "
                         "optimizer) and restore this one's state into it "
                         "(new.load_state_dict(pruner.state_dict()))")

    def __copy__(self):
        raise self._no_copy()

    def __deepcopy__(self, memo):
        raise self._no_copy()

    def __reduce_ex__(self, protocol):
        raise self._no_copy()

    def __reduce__(self):
        raise self._no_copy()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        if self.closed:
            return "<csprune.torch.ModulePruner closed>"
        return "<csprune.torch.ModulePruner %d parameters, step %d, sparsity %.3f>" % (
            len(self.names), self._step, self.sparsity())
