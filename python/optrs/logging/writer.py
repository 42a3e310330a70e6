"""``SummaryWriter``: ``torch.utils.tensorboard.SummaryWriter``'s API over ``tensorboardX``.

``tensorboardX`` writes the event files (records, CRCs, protobufs); this class turns optrs and
NumPy values into what it takes, checks them with errors that name the argument, and keeps
torch's behaviour where ``tensorboardX``'s differs: ``add_scalars`` sub-runs are named
``<log_dir>/<main_tag with / as _>_<tag>``; ``add_hparams`` takes ``hparam_domain_discrete`` and
``run_name``; event files are named ``events.out.tfevents.<time>.<host>.<pid>.<n><suffix>`` (``n``
counts the files this process opened) so that two writers on one directory in the same second, or
a writer reopened after ``close()``, never truncate each other's file (tensorboardX's names stop at
the host); ``purge_step`` applies to the first file only.
"""

from __future__ import annotations

import importlib
import itertools
import numbers
import operator
import os
import socket
import time
from datetime import datetime
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..autograd import Tensor
from ..errors import InvalidParamError, ParamDTypeError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

HParamValue = bool | str | int | float
_INSTALL_HINT = "pip install 'optrs-numpy[tensorboard]'"
_event_file_numbers = itertools.count()


def _import_tensorboardx() -> ModuleType:
    try:
        return importlib.import_module("tensorboardX")
    except ImportError as error:
        raise ImportError(f"optrs.logging.SummaryWriter writes through tensorboardX, which is not installed: "
                          f"{_INSTALL_HINT} (it also installs tensorboard, to view the logs)") from error


def default_log_dir(comment: str = "") -> str:
    """torch's default: ``runs/<Mon><DD>_<HH>-<MM>-<SS>_<hostname><comment>``."""
    current_time = datetime.now().strftime("%b%d_%H-%M-%S")
    return os.path.join("runs", current_time + "_" + socket.gethostname() + comment)


def as_array(value: object, name: str) -> NDArray[Any]:
    """``value`` (a number, ndarray, NumPy scalar, nested list or ``optrs.Tensor``) as a numeric
    ndarray; ``name`` is the argument named in the error."""
    array = np.asarray(value.data if isinstance(value, Tensor) else value)
    if array.dtype.kind not in "biuf":
        raise ParamDTypeError(f"{name} must be numeric (a number, a NumPy array or an optrs.Tensor); "
                              f"got {type(value).__name__} of dtype {array.dtype}")
    return array


def as_scalar(value: object, name: str) -> float:
    """``value`` as one float; a one-element array or tensor is fine, as in torch. NaN and inf
    pass through."""
    array = as_array(value, name)
    if array.size != 1:
        raise InvalidParamError(f"{name} must be a single number (or a one-element array or tensor); got an "
                                f"array of shape {array.shape}: log its mean, norm or an element, or use "
                                f"add_histogram for all of it")
    return float(array.reshape(()))


def _hparam(value: object, name: str) -> HParamValue:
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, (numbers.Real, np.ndarray, np.generic, Tensor)):
        return as_scalar(value, name)
    raise InvalidParamError(f"{name} should be one of int, float, str, bool, a NumPy number or an optrs.Tensor; "
                            f"got {type(value).__name__}")


def _same_kind(a: object, b: HParamValue) -> bool:
    """Domain values match their hparam's type (ints and floats are both numbers)."""
    if isinstance(b, (bool, str)):
        return type(a) is type(b)
    return isinstance(a, numbers.Real) and not isinstance(a, bool)


def _check_domains(domains: dict[str, list[Any]] | None,
                   hparams: dict[str, HParamValue]) -> dict[str, list[HParamValue]]:
    if domains is None:
        return {}
    if not isinstance(domains, dict):
        raise ParamDTypeError(f"hparam_domain_discrete should be a dict of lists; got {type(domains).__name__}")
    for key, domain in domains.items():
        if key not in hparams or not isinstance(domain, list) or not all(_same_kind(d, hparams[key]) for d in domain):
            raise ParamDTypeError(f"hparam_domain_discrete[{key!r}] should be a list of values of the same type as "
                                  f"hparam_dict[{key!r}]")
    return domains


def _add_discrete_domains(experiment: Any, domains: dict[str, list[HParamValue]]) -> None:
    """Writes ``domains`` into the hparams plugin's experiment summary (tensorboardX's ``hparams``
    leaves ``HParamInfo.domain_discrete`` empty; torch fills it)."""
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    plugin_data = experiment.value[0].metadata.plugin_data
    content = HParamsPluginData.FromString(plugin_data.content)
    for info in content.experiment.hparam_infos:
        for choice in domains.get(info.name, []):
            value = info.domain_discrete.values.add()
            if isinstance(choice, bool):
                value.bool_value = choice
            elif isinstance(choice, str):
                value.string_value = choice
            else:
                value.number_value = float(choice)
    plugin_data.content = content.SerializeToString()


def _step(global_step: object) -> int | None:
    """``global_step`` as an int (None stays None), or an error naming it."""
    if global_step is None:
        return None
    try:
        if isinstance(global_step, bool):
            raise TypeError
        return operator.index(global_step)  # type: ignore[arg-type]
    except TypeError:
        raise ParamDTypeError(f"global_step must be an int (or None), got {global_step!r}") from None


class SummaryWriter:
    """Writes TensorBoard event files to ``log_dir``, as ``torch.utils.tensorboard.SummaryWriter``.

    ``log_dir=None`` is ``runs/<date>_<host><comment>`` (``comment`` is ignored otherwise).
    ``purge_step`` hides, in TensorBoard, the events at steps >= it that an earlier crashed run
    wrote. Events are buffered: up to ``max_queue`` pending, written at least every
    ``flush_secs``, and on ``flush()`` / ``close()`` (a ``with`` block closes). Values may be
    Python numbers, NumPy arrays or scalars, or ``optrs.Tensor``s.
    """

    def __init__(self, log_dir: str | os.PathLike[str] | None = None, comment: str = "",
                 purge_step: int | None = None, max_queue: int = 10, flush_secs: int = 120,
                 filename_suffix: str = "") -> None:
        self._tbx = _import_tensorboardx()
        self.log_dir = os.fspath(log_dir) if log_dir is not None else default_log_dir(comment)
        self.purge_step = purge_step
        self.max_queue = max_queue
        self.flush_secs = flush_secs
        self.filename_suffix = filename_suffix
        self._writer: Any = self._open(self.log_dir, purge_step)
        self._scalars_writers: dict[str, Any] = {}

    def _open(self, log_dir: str, purge_step: int | None = None) -> Any:
        """A tensorboardX writer with a new event file in ``log_dir``."""
        suffix = f".{os.getpid()}.{next(_event_file_numbers)}{self.filename_suffix}"
        return self._tbx.SummaryWriter(logdir=log_dir, purge_step=purge_step, max_queue=self.max_queue,
                                       flush_secs=self.flush_secs, filename_suffix=suffix)

    @property
    def _main(self) -> Any:
        """The writer of ``log_dir`` itself, reopened (with a new file) after ``close()``."""
        if self._writer is None:
            self._writer = self._open(self.log_dir)
        return self._writer

    def get_logdir(self) -> str:
        """The directory the event files go to."""
        return self.log_dir

    def add_scalar(self, tag: str, scalar_value: object, global_step: int | None = None,
                   walltime: float | None = None) -> None:
        """One number (``scalar_value``: a float, NumPy scalar, or one-element array or tensor)
        at ``global_step``; ``walltime`` (seconds since the epoch) defaults to now."""
        self._main.add_scalar(tag, as_scalar(scalar_value, "scalar_value"), _step(global_step), walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict[str, object], global_step: int | None = None,
                    walltime: float | None = None) -> None:
        """Several numbers on one chart: as torch, each ``tag`` is its own run in the sub-directory
        ``<log_dir>/<main_tag with / as _>_<tag>``, logged under ``main_tag``."""
        values = {tag: as_scalar(value, f"tag_scalar_dict[{tag!r}]") for tag, value in tag_scalar_dict.items()}
        walltime = time.time() if walltime is None else walltime
        for tag, value in values.items():
            run_dir = os.path.join(self.log_dir, main_tag.replace("/", "_") + "_" + tag)
            if run_dir not in self._scalars_writers:
                self._scalars_writers[run_dir] = self._open(run_dir)
            self._scalars_writers[run_dir].add_scalar(main_tag, value, _step(global_step), walltime)

    def add_histogram(self, tag: str, values: object, global_step: int | None = None,
                      bins: str | int | list[float] | NDArray[Any] = "tensorflow", walltime: float | None = None,
                      max_bins: int | None = None) -> None:
        """The histogram of ``values`` (any shape, flattened). ``bins`` as in torch:
        ``"tensorflow"`` (TensorFlow's exponential buckets), a NumPy ``np.histogram`` rule such
        as ``"auto"`` or ``"fd"``, a bin count, or bin edges; ``max_bins`` merges adjacent bins."""
        array = as_array(values, "values")
        if array.size == 0:
            raise InvalidParamError(f"values is empty (shape {array.shape}): a histogram needs at least one value")
        self._main.add_histogram(tag, array, _step(global_step), bins, walltime, max_bins)

    def add_text(self, tag: str, text_string: str, global_step: int | None = None,
                 walltime: float | None = None) -> None:
        """Text (Markdown) under ``tag``, shown in TensorBoard's Text tab."""
        if not isinstance(text_string, str):
            raise ParamDTypeError(f"text_string must be a str; got {type(text_string).__name__}")
        self._main.add_text(tag, text_string, _step(global_step), walltime)

    def add_figure(self, tag: str, figure: Figure | list[Figure], global_step: int | None = None,
                   close: bool = True, walltime: float | None = None) -> None:
        """A matplotlib figure (or a list of them) rendered to an image (PNG) summary; with
        ``close`` the figure is closed afterwards."""
        try:
            importlib.import_module("matplotlib.backends.backend_agg")
        except ImportError as error:
            raise ImportError("add_figure renders with matplotlib, which is not installed: pip install matplotlib") \
                from error
        self._main.add_figure(tag, figure, _step(global_step), close, walltime)

    def add_hparams(self, hparam_dict: dict[str, Any], metric_dict: dict[str, object],
                    hparam_domain_discrete: dict[str, list[Any]] | None = None, run_name: str | None = None,
                    global_step: int | None = None) -> None:
        """One trial for TensorBoard's HParams tab: its hyperparameters (bool, str, or numbers) and
        metrics, written to the run ``<log_dir>/<run_name>`` (default: the current time), as torch.
        ``hparam_domain_discrete`` lists each named hparam's possible values."""
        if type(hparam_dict) is not dict or type(metric_dict) is not dict:
            raise ParamDTypeError("hparam_dict and metric_dict should be dictionaries")
        hparams = {key: _hparam(value, f"hparam_dict[{key!r}]") for key, value in hparam_dict.items()}
        metrics = {key: as_scalar(value, f"metric_dict[{key!r}]") for key, value in metric_dict.items()}
        domains = _check_domains(hparam_domain_discrete, hparams)
        experiment, session_start, session_end = self._tbx.summary.hparams(hparams, metrics)
        _add_discrete_domains(experiment, domains)
        run_dir = os.path.join(self.log_dir, run_name or str(time.time()))
        with self._open(run_dir) as trial:
            for summary in (experiment, session_start, session_end):
                trial.file_writer.add_summary(summary, _step(global_step))
            for key, value in metrics.items():
                trial.add_scalar(key, value, _step(global_step))

    def _open_writers(self) -> list[Any]:
        return [writer for writer in (self._writer, *self._scalars_writers.values()) if writer is not None]

    def flush(self) -> None:
        """Writes every pending event to disk, as torch's ``flush`` (which waits for its queue)."""
        for writer in self._open_writers():
            for file_writer in writer.all_writers.values():
                _drain(file_writer.event_writer)
            writer.flush()

    def close(self) -> None:
        """Flushes and closes the event files (a later ``add_*`` opens new ones, as torch)."""
        for writer in self._open_writers():
            writer.close()
        self._writer = None
        self._scalars_writers = {}

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def _drain(events: Any) -> None:
    """Waits until tensorboardX's writer thread has written every event queued so far.

    tensorboardX's own ``flush`` flushes the file but not its queue (a multiprocessing.Queue, whose
    ``empty()`` cannot be trusted), so an event added just before could still be in flight. The
    queue is first in, first out: stopping the thread (its stop signal goes in behind the events)
    and starting a new one on the same queue and file writes them all."""
    worker = getattr(events, "_worker", None)
    if getattr(events, "_closed", True) or worker is None or not hasattr(worker, "stop"):
        return  # a tensorboardX whose writer is not the one this was written against: its flush only
    worker.stop()
    events._worker = type(worker)(events._event_queue, events._ev_writer, events._flush_secs)
    events._worker.start()
