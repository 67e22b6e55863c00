"""csprune.torch: prune a ``torch.nn.Module`` during training with libcsp.

    import csprune.torch
    model = ...; opt = torch.optim.Adam(model.parameters(), 1e-3)
    pruner = csprune.torch.ModulePruner(model, opt, final_sparsity=0.9,
                                    begin_step=0, end_step=2000, frequency=50)
    for x, y in data:
        opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
        pruner.step()                      # after every optimizer.step()

Parameters are CPU, contiguous, float32 (or float64) tensors viewed by
pointer (``tensor.data_ptr()``), never copied: libcsp writes the zeros into
the parameters' own memory. Anything else raises a TypeError/ValueError that
says what to change.

CSP (compressed-sensing pruning) is chosen with ``sensing=`` and friends,
e.g. activation sensing, whose layer inputs the forward hooks feed:

    pruner = csprune.torch.ModulePruner(model, opt, final_sparsity=0.9, end_step=2000,
                                    granularity="row", sensing="activations",
                                    observe_window=20)
"""

import fnmatch
import warnings
import weakref

import torch
from torch import nn

from ._core import (Context, CspError, Granularity, SensingKind, describe_buffer,
                    refuse_while_running)
from . import _options
from ._pruner import Pruner, _checkpoint_of
from ._schedule import Schedule

__all__ = ["ModulePruner", "DEFAULT_COMPANION_KEYS", "default_include"]

#: Optimizer-state entries registered as companions when they have the
#: parameter's shape: SGD's momentum_buffer; Adam/AdamW's exp_avg, exp_avg_sq,
#: max_exp_avg_sq (amsgrad); RMSprop's square_avg, grad_avg; Adadelta's
#: acc_delta; Adagrad's sum; Adamax's exp_inf.
DEFAULT_COMPANION_KEYS = ("momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq",
                          "square_avg", "grad_avg", "acc_delta", "sum", "exp_inf")

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)

_OVERRIDE_KEYS = {"sparsity", "nm", "prune"} | set(_options.TENSOR_KEYWORDS)

MODULE_STATE_FORMAT = "csprune.torch.ModulePruner"
MODULE_STATE_VERSION = 2


def default_include(name, module, param):
    """The default choice of pruned parameters: weights of rank >= 2
    (Linear, Conv, LSTM/GRU matrices, Embedding), never biases nor the
    parameters of normalisation layers."""
    leaf = name.rsplit(".", 1)[-1]
    return param.dim() >= 2 and "bias" not in leaf and not isinstance(module, _NORMS)


class ModulePruner:
    """Prunes the weights of an ``nn.Module`` in place during training.

    @param model           The module (on the CPU).
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
                           or constant final_sparsity when end_step is None.
    @param granularity     Default Granularity ("tensor", "row", "global", "nm").
    @param nm              Default (N, M) for "nm".
    @param overrides       {name or fnmatch pattern: {key: value}} with keys
                           sparsity (alias final_sparsity), granularity, group,
                           nm, exclude (registered, never pruned), prune (True
                           forces a parameter in, False leaves it out), and
                           every per-tensor option of csp.Pruner.add_tensor()
                           (sensing, solver, correction, sensing_damping, ...;
                           docs/options.md).
                           Later patterns win; an exact name wins over
                           patterns; a pattern that matches nothing is an
                           error.
    @param include         ``include(name, module, param) -> bool``: the
                           parameters to prune (default: default_include).
    @param companion_keys  Optimizer-state keys registered as companions.
    @param options         The options of csp.Pruner (docs/options.md: sensing,
                           solver, correction, sensing_damping, solver_tol,
                           ..., and the experimental ones; None or absent:
                           the library's default, GMP). CSP tensors need
                           granularity "row".
    @param observe         Forward hooks on nn.Linear and nn.LSTM that feed
                           their inputs to observe() (see _install_hooks):
                           True installs them, False never (feed observe()
                           yourself), None (default) when some parameter has
                           activations sensing or an observer is given. With
                           hooks, a parameter with activations sensing that no
                           hook can feed is a ValueError.
    @param observer        ``observer(name, x)`` called with every observed
                           input matrix (rows x cols float32), for inspection.
    @param ctx             A csp.Context; default: a new one made with seed
                           and num_threads, owned and closed by this object.
    """

    def __init__(self, model, optimizer=None, schedule=None, *, final_sparsity=None,
                 begin_step=0, end_step=None, frequency=100, initial_sparsity=0.0,
                 exponent=3.0, granularity=Granularity.TENSOR, nm=None, overrides=None,
                 include=default_include, companion_keys=DEFAULT_COMPANION_KEYS,
                 observe=None, observer=None, ctx=None, seed=0, num_threads=1, **options):
        if not isinstance(model, nn.Module):
            raise TypeError("model must be a torch.nn.Module, not %s" % type(model).__name__)
        self.model = model
        self.optimizer = optimizer
        self.companion_keys = tuple(companion_keys)
        self._hooks = []
        self._owned_ctx = None
        self._owned_schedule = None
        self._pruner = None
        self._step = 0
        self._gate = (None, False)  # (step, hooks active) for the forward passes of a step

        if isinstance(schedule, Schedule):
            if ctx is not None and ctx is not schedule.ctx:
                raise ValueError("the schedule belongs to another context than ctx")
            ctx = schedule.ctx
        if ctx is None:
            ctx = self._owned_ctx = Context(seed=seed, num_threads=num_threads)
        self.ctx = ctx
        own_schedule = not isinstance(schedule, Schedule)
        try:
            if isinstance(schedule, Schedule):
                sched = schedule
            elif callable(schedule):
                if final_sparsity is None:
                    raise ValueError("a callback schedule needs final_sparsity")
                sched = Schedule.callback(ctx, schedule, final_sparsity, begin_step=begin_step,
                                          end_step=-1 if end_step is None else end_step,
                                          frequency=frequency)
            elif schedule is None:
                if final_sparsity is None:
                    raise ValueError("give final_sparsity (and end_step for a ramp), or a "
                                     "schedule")
                if end_step is None:
                    sched = Schedule.constant(ctx, final_sparsity, begin_step=begin_step,
                                              frequency=frequency)
                else:
                    sched = Schedule.polynomial(ctx, final_sparsity, begin_step=begin_step,
                                                end_step=end_step,
                                                initial_sparsity=initial_sparsity,
                                                exponent=exponent, frequency=frequency)
            else:
                raise TypeError("schedule must be a csp.Schedule, a callable or None, not %s"
                                % type(schedule).__name__)
            #: the csp.Schedule (target(step), events(...)); closed with this
            #: object when it was made here
            self.schedule = sched
            self._owned_schedule = sched if own_schedule else None
            self._pruner = Pruner(ctx, sched, granularity=granularity, nm=nm, **options)
            self._register(include, overrides or {})
            self._sync()  # optimizer state that already exists (e.g. loaded)
            self._observer = observer
            #: rows fed to observe() per parameter name
            self.observed_rows = {n: 0 for n in self.names}
            #: LSTM weights whose inputs no forward hook can see (observe=True)
            self.unobserved = []
            if observe is None:
                observe = observer is not None or bool(self._activations())
            if observe:
                self._install_hooks()
        except BaseException:
            self._close()  # what was made here is in no running libcsp call
            raise

    # --- registration ---------------------------------------------------------------

    def _register(self, include, overrides):
        for key, opts in overrides.items():
            bad = set(opts) - _OVERRIDE_KEYS
            if bad:
                raise ValueError("override %r: unknown keys %s (known: %s)"
                                 % (key, sorted(bad), sorted(_OVERRIDE_KEYS)))
        used = set()
        self.names = []          #: registered parameter names, by index
        self._params = []        #: the Parameter objects, by index
        self._ptrs = []          #: data_ptr() each view points at
        self._excluded = []
        self._index = {}         #: id(param) -> index
        self._name_index = {}    #: name -> index
        self._companions = {}    #: (index, key) -> csp.Tensor
        seen = set()
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
                if wanted:
                    self._add(name, param, opts)
        unused = set(overrides) - used
        if unused:
            raise ValueError("overrides match no parameter: %s (parameters: %s)"
                             % (sorted(unused), ", ".join(n for n, _ in
                                                          self.model.named_parameters())))

    def _add(self, name, param, opts):
        try:
            ptr = describe_buffer(param)[0]
        except (TypeError, ValueError) as e:
            raise type(e)("parameter %s: %s" % (name, e)) from None
        opts = dict(opts)
        sparsity = opts.pop("sparsity", None)
        if sparsity is not None:
            opts["final_sparsity"] = sparsity
        opts["exclude"] = bool(opts.get("exclude", False))
        try:
            index = self._pruner.add_tensor(param, name, **opts)
        except CspError as e:
            raise CspError(e.status, "parameter %s: %s" % (name, e.message)) from e
        except (TypeError, ValueError) as e:
            raise type(e)("parameter %s: %s" % (name, e)) from None
        self.names.append(name)
        self._params.append(param)
        self._ptrs.append(ptr)
        self._excluded.append(bool(opts.get("exclude", False)))
        self._index[id(param)] = index
        self._name_index[name] = index

    def _sync(self):
        """Follow the host: re-point views whose parameter was given new
        memory (``p.data = ...``), and register optimizer state as companions
        (lazily created, or replaced by load_state_dict)."""
        for i, p in enumerate(self._params):
            if p.data_ptr() != self._ptrs[i]:
                try:
                    self._pruner.tensor(i).set_data(p)
                except (TypeError, ValueError) as e:
                    raise type(e)("parameter %s changed: %s" % (self.names[i], e)) from None
                self._ptrs[i] = p.data_ptr()
        if self.optimizer is None:
            return
        state = self.optimizer.state
        for i, p in enumerate(self._params):
            if self._excluded[i]:
                continue
            st = state.get(p)
            if not st:
                continue
            for key in self.companion_keys:
                buf = st.get(key)
                if not isinstance(buf, torch.Tensor) or buf.shape != p.shape:
                    continue
                t = self._companions.get((i, key))
                try:
                    if t is None:
                        self._companions[(i, key)] = self._pruner.add_companion(
                            i, buf, "%s:%s" % (self.names[i], key))
                    elif t.buffer is not buf or t.data_ptr != buf.data_ptr():
                        t.set_data(buf)
                except (TypeError, ValueError) as e:
                    raise type(e)("optimizer state %r of %s: %s"
                                  % (key, self.names[i], e)) from None

    # --- training ----------------------------------------------------------------------

    def step(self, step=None):
        """Call right after every ``optimizer.step()``. ``step`` is the number
        of optimizer updates done before this one (0 at the first call; by
        default counted here). Returns csp.Status.PRUNED at pruning events,
        else csp.Status.MASKED; pruned weights and their optimizer state are
        exactly zero afterwards."""
        self._refuse_while_running("ModulePruner.step()")
        if step is None:
            step = self._step
        self._sync()
        status = self._live().step(step)
        self._step = int(step) + 1
        return status

    @property
    def last_step(self):
        return self._live().last_step

    # --- activation sensing -------------------------------------------------------------

    def _activations(self):
        """Indices of the parameters whose sensing is activations."""
        p = self._live()
        return [i for i in range(len(self.names)) if p.sensing_kind(i) == SensingKind.ACTIVATIONS]

    def wants_observe(self, step=None):
        """Should the forward pass of ``step`` (default: the coming one, the
        pass whose update the next step() call follows) observe activations?
        csp.Pruner.wants_observe: True when some parameter has activations
        sensing and the next event is within observe_window steps."""
        return self._live().wants_observe(self._step if step is None else step)

    def observe(self, name, x):
        """Feed the inputs ``x`` (rows x cols, cols = the weight's columns) of
        the layer owning parameter ``name`` to activation sensing: the
        library's csp_pruner_observe() when the parameter has activations
        sensing (S += x^T x, N += rows), and the ``observer`` callback.

        ``x`` is read, never written: a float32 contiguous CPU tensor is
        passed by pointer; any other dtype or layout is converted to one
        first (a copy of the input, not of a parameter). The forward hooks
        call this; call it yourself for layers they do not see (observe=False,
        or parameters listed in ``unobserved``)."""
        p = self._live()
        index = self._name_index[name] if isinstance(name, str) else p._index(name)
        x = x.detach()
        if x.device.type != "cpu":
            raise ValueError("observe(%s): the inputs are on device '%s'; libcsp reads CPU "
                             "memory" % (self.names[index], x.device))
        if x.dtype != torch.float32 or not x.is_contiguous():
            x = x.to(torch.float32).contiguous()  # read-only input: a copy is fine
        cols = p.tensor(index).cols
        if x.dim() != 2 or x.shape[1] != cols:
            raise ValueError("observe(%s): expected rows x %d, got %s"
                             % (self.names[index], cols, tuple(x.shape)))
        if p.sensing_kind(index) == SensingKind.ACTIVATIONS:
            try:
                p.observe(index, x)
            except CspError as e:
                raise CspError(e.status, "observe(%s): %s" % (self.names[index], e.message)) \
                    from e
        self.observed_rows[self.names[index]] += x.shape[0]
        if self._observer is not None:
            self._observer(self.names[index], x)

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

    def _install_hooks(self):
        ref = weakref.ref(self)

        def active():
            me = ref()
            return me is not None and not me.closed and me._hooks_active()

        def feed(name, x):
            me = ref()
            if me is not None and not me.closed:
                me.observe(name, x)

        # With activations sensing and no observer, only the weights that
        # have it are fed; otherwise (an observer) every registered one.
        acts = {self.names[i] for i in self._activations()}
        everything = self._observer is not None or not acts
        fed = set()
        for mname, module in self.model.named_modules():
            prefix = mname + "." if mname else ""
            if isinstance(module, nn.Linear):
                name = prefix + "weight"
                if self._observable(module.weight, name) and (everything or name in acts):
                    fed.add(name)
                    self._hooks.append(module.register_forward_hook(
                        _linear_hook(active, feed, module, name)))
            elif isinstance(module, nn.LSTM):
                seen = _lstm_fed(module)
                targets = {}
                for pname, param in module.named_parameters(recurse=False):
                    name = prefix + pname
                    if not self._observable(param, name):
                        continue
                    if pname in seen:
                        if everything or name in acts:
                            targets[pname] = name
                            fed.add(name)
                    elif pname.startswith("weight"):
                        self.unobserved.append(name)
                if targets:
                    self._hooks.append(module.register_forward_hook(
                        _lstm_hook(active, feed, module, targets)))
        starved = [n for n in self.names if n in acts and n not in fed]
        if starved:
            raise ValueError(
                "activations sensing needs the inputs of %s, which no forward hook sees (hooks "
                "feed nn.Linear weights, and of an nn.LSTM weight_ih_l0[_reverse] and the last "
                "layer's forward weight_hh); give them another sensing, e.g. overrides={%r: "
                "{'sensing': 'gaussian'}}, or pass observe=False and call observe() yourself"
                % (", ".join(starved), starved[0]))
        if self.unobserved and not self._activations():  # only an observer would miss them
            warnings.warn("csp.torch: the inputs of %s are not visible to a forward hook "
                          "(inner LSTM layers, reverse-direction recurrences); they are not "
                          "observed" % ", ".join(self.unobserved), stacklevel=3)

    def _observable(self, param, name):
        i = self._index.get(id(param))
        return i is not None and not self._excluded[i]

    # --- reading ------------------------------------------------------------------------

    @property
    def pruner(self):
        """The underlying csp.Pruner."""
        return self._live()

    def mask(self, name):
        """The mask of parameter ``name`` as a torch.bool tensor of its shape."""
        return torch.from_numpy(self._live().mask(self._name_index[name]))

    def masks(self):
        """{name: torch.bool mask} for every registered parameter."""
        return {n: self.mask(n) for n in self.names}

    def stats(self):
        """csp.TensorStats of every registered parameter."""
        return self._live().stats()

    def nnz(self, name=None):
        return self._live().nnz(None if name is None else self._name_index[name])

    def sensing(self, name):
        """The sensing operator of parameter ``name`` (csp.Pruner.sensing: a
        borrowed view of the pruner's own, e.g. to all-reduce an activations
        accumulator; None for GMP parameters)."""
        return self._live().sensing(self._name_index[name])

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
        optimizer's: ``{"format": "csprune.torch.ModulePruner", "version": 2,
        "names": [...], "checkpoint": uint8 tensor}``, the checkpoint being
        the library's (csp.Pruner.save(): masks, schedule position, activation
        accumulators, ISTA/FISTA lambdas, statistics) and ``names`` the
        registered parameters in order. Plain data: torch.load(...,
        weights_only=True) reads it."""
        data = self._live().save()
        return {"format": MODULE_STATE_FORMAT, "version": MODULE_STATE_VERSION,
                "names": list(self.names),
                "checkpoint": torch.frombuffer(bytearray(data), dtype=torch.uint8)}

    def load_state_dict(self, state):
        """Restore state_dict() into a ModulePruner built the same way (same
        parameters and options, same seed) on the model and optimizer whose
        state was saved with it; it may have stepped already. A dict that is
        not such a state is ValueError; a checkpoint the library refuses
        (corrupt, or of another configuration) is CspError with the library's
        message, and nothing changed. The step counter continues from the
        restored last step. Nothing is written to the parameters or the
        optimizer state here: the masks reach them at the next step() (a model
        saved with the pruner's state is already masked)."""
        self._refuse_while_running("ModulePruner.load_state_dict()")
        data = _checkpoint_of(state, MODULE_STATE_FORMAT, MODULE_STATE_VERSION)
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
        self._step = 0 if last is None else last + 1
        self._gate = (None, False)

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


# --- forward hooks ---------------------------------------------------------------------------

def _linear_hook(active, feed, linear, name):
    """nn.Linear: the weight (out, in) is fed the layer input, every leading
    dimension flattened into rows: (N, in). Only for @p linear itself: a
    copy of the model (copy.deepcopy copies hooks along) feeds nothing."""
    target = weakref.ref(linear)

    def hook(module, inputs, output):
        if module is target() and module.training and inputs and active():
            x = inputs[0]
            feed(name, x.detach().reshape(-1, x.shape[-1]))
    return hook


def _lstm_fed(lstm):
    """The parameter names of an nn.LSTM whose inputs a forward hook can see:
    the first layer's input matrices (the layer input) and the last layer's
    forward recurrence (h_{t-1}, from the output)."""
    fed = {"weight_ih_l0"}
    if lstm.bidirectional:
        fed.add("weight_ih_l0_reverse")
    fed.add("weight_hh_l%d" % (lstm.num_layers - 1))
    return fed


def _lstm_hook(active, feed, lstm, targets):
    """nn.LSTM: weight_ih_l0 (and _reverse), (4H, in), is fed the input
    frames x_t, one row per frame of every sequence (padded, batch_first or
    packed order); the last layer's forward weight_hh, (4H, H), is fed the
    previous hidden state h_{t-1} of the same frames (h_0 for the first frame:
    the hx given to the LSTM, else zeros), since W_hh multiplies h_{t-1} in
    the gates W_ih x_t + W_hh h_{t-1} + b. Only for @p lstm itself (not a
    copy of the model)."""
    last_hh = "weight_hh_l%d" % (lstm.num_layers - 1)
    target = weakref.ref(lstm)

    def hook(module, inputs, output):
        if module is not target() or not module.training or not inputs or not active():
            return
        x = inputs[0]
        hx = inputs[1] if len(inputs) > 1 else None
        out = output[0]
        packed = isinstance(x, nn.utils.rnn.PackedSequence)
        xin = x.data if packed else x
        for pname in ("weight_ih_l0", "weight_ih_l0_reverse"):
            if pname in targets:
                feed(targets[pname], xin.detach().reshape(-1, xin.shape[-1]))
        if last_hh in targets:
            feed(targets[last_hh], _previous_hidden(module, x, hx, out, packed))
    return hook


def _previous_hidden(lstm, x, hx, out, packed):
    """h_{t-1} of the last layer's forward direction for every frame, as rows
    (h_0 from hx when given positionally, else zeros)."""
    with torch.no_grad():
        hsize = lstm.proj_size if getattr(lstm, "proj_size", 0) else lstm.hidden_size
        data = out.data if packed else out
        data = data.detach()[..., :hsize]  # forward direction of a bidirectional output
        h0 = None
        if hx is not None:
            h0 = hx[0][-1 - (1 if lstm.bidirectional else 0)].detach()
        if packed:
            bs = out.batch_sizes
            n, b0 = data.shape[0], int(bs[0])
            if h0 is None:
                h0 = data.new_zeros(b0, hsize)
            elif out.sorted_indices is not None:
                h0 = h0.index_select(0, out.sorted_indices)
            shift = torch.repeat_interleave(torch.cat([bs.new_zeros(1), bs[:-1]]), bs)
            idx = torch.arange(n) - shift
            prev = data[idx.clamp(min=0)]
            prev[:b0] = h0
            return prev
        if data.dim() == 2:  # unbatched (T, H)
            h0 = data.new_zeros(1, hsize) if h0 is None else h0.reshape(1, hsize)
            return torch.cat([h0, data[:-1]], 0)
        if lstm.batch_first:  # (B, T, H)
            h0 = data.new_zeros(data.shape[0], hsize) if h0 is None else h0
            prev = torch.cat([h0.unsqueeze(1), data[:, :-1]], 1)
        else:  # (T, B, H)
            h0 = data.new_zeros(data.shape[1], hsize) if h0 is None else h0
            prev = torch.cat([h0.unsqueeze(0), data[:-1]], 0)
        return prev.reshape(-1, hsize)
