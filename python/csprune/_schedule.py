"""Sparsity schedules."""

import ctypes

from . import _lib
from ._core import Context, ScheduleKind, Status, _Handle, c_int, check, expect, to_enum
from ._lib import lib


class _Callback:
    """A Python target function behind a ctypes thunk.

    Holds the thunk alive for as long as any C object may call it (the
    schedule and every pruner created from it keep this object). An exception
    raised by the function never crosses into C: it is stored, the thunk
    returns CSP_E_CALLBACK, the C call fails, and the Python wrapper of that
    call raises CspError with the exception chained as its cause.
    """

    def __init__(self, fn):
        if not callable(fn):
            raise TypeError("the schedule callback must be callable, not %s"
                            % type(fn).__name__)
        self.fn = fn
        self.error = None
        self.thunk = _lib.SCHEDULE_FN(self._call)

    def _call(self, user, step, target):
        try:
            target[0] = float(self.fn(int(step)))
            return 0
        except BaseException as e:  # noqa: B902 -- nothing may unwind through C
            if self.error is None:
                self.error = e
            return int(Status.E_CALLBACK)

    def take(self):
        err, self.error = self.error, None
        return err


class Schedule(_Handle):
    """Step -> target sparsity, and which steps are pruning events.

    Events are ``begin_step + j * frequency`` up to ``end_step``, plus
    ``end_step`` itself (docs/guide.md). Use the constructors
    :meth:`constant`, :meth:`polynomial` and :meth:`callback`, or pass every
    field of ``csp_schedule_options`` as keyword arguments.

    A schedule is immutable; a pruner copies it, so the schedule may be closed
    once its pruners exist (a callback stays alive with them).
    """
    _free = lib.csp_schedule_free
    _copy_hint = ("a schedule is immutable: share this one, or create another with the same "
                  "arguments")

    def __init__(self, ctx, kind=ScheduleKind.POLYNOMIAL, *, initial_sparsity=0.0,
                 final_sparsity=0.5, exponent=3.0, begin_step=0, end_step=-1,
                 frequency=100, callback=None):
        super().__init__()
        self.ctx = expect(ctx, Context, "ctx")
        self.kind = to_enum(ScheduleKind, kind, "schedule kind")
        opts = _lib.init_struct(_lib.ScheduleOptions)
        opts.kind = int(self.kind)
        opts.initial_sparsity = initial_sparsity
        opts.final_sparsity = final_sparsity
        opts.exponent = exponent
        opts.begin_step = c_int(begin_step, "int64", "begin_step", "Schedule")
        opts.end_step = -1 if end_step is None else c_int(end_step, "int64", "end_step",
                                                          "Schedule")
        opts.frequency = c_int(frequency, "int64", "frequency", "Schedule")
        self._callback = None
        if callback is not None:
            self._callback = _Callback(callback)
            opts.callback = self._callback.thunk
        self.begin_step = int(opts.begin_step)
        self.end_step = int(opts.end_step)
        self.frequency = int(opts.frequency)
        self.initial_sparsity = float(initial_sparsity)
        self.exponent = float(exponent)
        handle = ctypes.c_void_p()
        check(lib.csp_schedule_create(ctypes.byref(handle), ctx._live(), ctypes.byref(opts)),
              ctx)
        self._handle = handle
        self._depend_on(ctx)

    @classmethod
    def constant(cls, ctx, sparsity, *, begin_step=0, end_step=-1, frequency=100):
        """``sparsity`` at every step (TF-MOT ConstantSparsity)."""
        return cls(ctx, ScheduleKind.CONSTANT, final_sparsity=sparsity,
                   begin_step=begin_step, end_step=end_step, frequency=frequency)

    @classmethod
    def one_shot(cls, ctx, sparsity, *, step=0):
        """One pruning event, at ``step``, to ``sparsity``; every later step
        only re-applies the masks (fine-tuning keeps the pattern). A constant
        schedule with begin_step = end_step = step (docs/guide.md, "One-shot
        pruning")."""
        return cls.constant(ctx, sparsity, begin_step=step, end_step=step, frequency=1)

    @classmethod
    def polynomial(cls, ctx, final_sparsity, *, end_step, begin_step=0,
                   initial_sparsity=0.0, exponent=3.0, frequency=100):
        """Ramp from ``initial_sparsity`` at ``begin_step`` to ``final_sparsity``
        at ``end_step``; exponent 3 is Zhu & Gupta's cubic schedule (TF-MOT
        PolynomialDecay)."""
        return cls(ctx, ScheduleKind.POLYNOMIAL, initial_sparsity=initial_sparsity,
                   final_sparsity=final_sparsity, exponent=exponent,
                   begin_step=begin_step, end_step=end_step, frequency=frequency)

    @classmethod
    def callback(cls, ctx, fn, final_sparsity, *, begin_step=0, end_step=-1, frequency=100):
        """``fn(step) -> float`` in [0, 1) gives the target at each event.
        ``final_sparsity`` is the value the targets end at (it scales
        per-tensor overrides). An exception raised by ``fn`` makes the call
        that asked for the target raise CspError (E_CALLBACK) from it."""
        return cls(ctx, ScheduleKind.CALLBACK, final_sparsity=final_sparsity,
                   begin_step=begin_step, end_step=end_step, frequency=frequency,
                   callback=fn)

    def _closed(self):
        pass  # the callback stays referenced: pruners copied the schedule

    def _check(self, st):
        return check(st, self.ctx, self._callback)

    def target(self, step):
        """Target sparsity at ``step`` (>= 0)."""
        step = c_int(step, "int64", "step", "Schedule.target")
        h = self._live()
        out = ctypes.c_double()
        self.ctx._enter()  # a callback schedule runs Python inside this call
        try:
            st = lib.csp_schedule_target(h, step, ctypes.byref(out))
        finally:
            self.ctx._leave()
        self._check(st)
        return out.value

    def is_event(self, step):
        """Is ``step`` a pruning event?"""
        step = c_int(step, "int64", "step", "Schedule.is_event")
        out = ctypes.c_int32()
        self._check(lib.csp_schedule_is_event(self._live(), step, ctypes.byref(out)))
        return bool(out.value)

    def next_event(self, step=-1):
        """The first event strictly after ``step`` (-1: the very first), or None."""
        step = c_int(step, "int64", "step", "Schedule.next_event")
        out = ctypes.c_int64()
        self._check(lib.csp_schedule_next_event(self._live(), step, ctypes.byref(out)))
        return None if out.value < 0 else out.value

    def last_event(self, step):
        """The last event at or before ``step``, or None."""
        step = c_int(step, "int64", "step", "Schedule.last_event")
        out = ctypes.c_int64()
        self._check(lib.csp_schedule_last_event(self._live(), step, ctypes.byref(out)))
        return None if out.value < 0 else out.value

    def events(self, stop):
        """The event steps up to ``stop`` inclusive, in order."""
        e = self.next_event(-1)
        while e is not None and e <= stop:
            yield e
            e = self.next_event(e)

    @property
    def final_sparsity(self):
        return lib.csp_schedule_final_sparsity(self._live())

    def __repr__(self):
        if self.closed:
            return "<csp.Schedule closed>"
        return "<csp.Schedule %s final=%g begin=%d end=%d every %d>" % (
            self.kind.name.lower(), self.final_sparsity, self.begin_step, self.end_step,
            self.frequency)
