"""Where a sweep's ensemble chunks run: this process, a local process pool, or a Dask / Ray cluster.

Every executor has one method, ``imap(fn, items)``, yielding ``(index, result)``
as tasks finish (in any order), and is a context manager.  ``fn`` must be a
module-level function and ``items`` plain data, so the same call runs on any of
them; no scheduler of our own — the pool is ``concurrent.futures``, clusters are
Dask's ``distributed`` or Ray.  ``make_executor(cluster=…)`` picks one from an
address: ``tcp://host:8786`` (a Dask scheduler), none (local pool).  ``ray://host:10001``
or ``ray`` reach an existing Ray cluster, but Ray is not installed with neuro and this path
is untested (see DEVELOPERS.md).  Dask and Ray are imported here only, and only when asked for.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal


class ClusterError(ValueError):
    """A cluster that cannot be reached; the message names the address."""


def _timeout() -> float:
    """Seconds to wait for a cluster's scheduler (``NEURO_CLUSTER_TIMEOUT``, default 10)."""
    try:
        return float(os.environ.get("NEURO_CLUSTER_TIMEOUT", "10"))
    except ValueError:
        raise ValueError(f"NEURO_CLUSTER_TIMEOUT must be a number of seconds, got "
                         f"{os.environ['NEURO_CLUSTER_TIMEOUT']!r}") from None


def cpu_count() -> int:
    """Cores this process may use (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class Executor:
    name = "executor"

    def imap(self, fn, items: list):
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class InlineExecutor(Executor):
    """Run each task in this process, one after the other (debugging, tests, one GPU)."""

    name = "inline"

    def imap(self, fn, items):
        for i, item in enumerate(items):
            yield i, fn(item)


def _init_worker(threads: int) -> None:
    """Worker setup: a fixed number of torch threads (cores are split between workers, so the
    numbers do not depend on how busy the pool is), and die with the parent — a killed sweep
    must not leave orphans writing into its run folder."""
    import torch
    torch.set_num_threads(threads)
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class LocalPool(Executor):
    """A pool of ``workers`` processes (spawned: no torch state is forked), each with
    ``threads`` torch threads; by default one worker per core and one thread each."""

    name = "local"

    def __init__(self, workers: int | None = None, threads: int | None = None):
        workers = workers or cpu_count()
        if not (isinstance(workers, int) and workers >= 1):
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        self.workers = workers
        self.threads = threads or max(1, cpu_count() // workers)
        self._pool = None

    def imap(self, fn, items):
        if not items:
            return
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(max_workers=min(self.workers, len(items)),
                                                mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_init_worker, initargs=(self.threads,))
        futures = {self._pool.submit(fn, item): i for i, item in enumerate(items)}
        try:
            for fut in cf.as_completed(futures):
                yield futures[fut], fut.result()
        finally:
            for fut in futures:
                fut.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


class DaskExecutor(Executor):
    """Tasks on a Dask ``distributed`` cluster: ``address`` is a scheduler address
    (``tcp://host:8786``) or an existing ``distributed.Client``."""

    name = "dask"

    def __init__(self, address):
        try:
            from distributed import Client
        except ImportError:
            raise ImportError("a Dask cluster needs the 'distributed' package: pip install distributed") from None
        self._own = not isinstance(address, Client)
        if self._own:
            try:
                self.client = Client(address, timeout=_timeout())
            except (OSError, TimeoutError) as e:
                raise ClusterError(f"cannot reach the Dask scheduler at {address} within {_timeout()} s "
                                   f"({type(e).__name__}); start it, check the address, or run without --cluster"
                                   ) from None
        else:
            self.client = address

    def imap(self, fn, items):
        from distributed import as_completed
        futures = self.client.map(fn, items, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for fut in as_completed(futures):
                yield index[fut.key], fut.result()
        finally:
            self.client.cancel(futures)

    def close(self) -> None:
        if self._own:
            self.client.close()


class RayExecutor(Executor):
    """Tasks on a Ray cluster (``ray://host:10001``, or ``auto`` for the one this node joined)."""

    name = "ray"

    def __init__(self, address: str = "auto", threads: int = 1):
        try:
            import ray
        except ImportError:
            raise ImportError("a Ray cluster needs the 'ray' package: pip install ray") from None
        self.ray = ray
        if not ray.is_initialized():
            try:
                ray.init(address=address)
            except (OSError, RuntimeError, TimeoutError) as e:
                raise ClusterError(f"cannot reach the Ray cluster at {address} ({str(e).splitlines()[0][:160]}); "
                                   f"start it, check the address, or run without --cluster") from None
        self.threads = threads

    def imap(self, fn, items):
        remote = self.ray.remote(num_cpus=self.threads)(fn)
        refs = [remote.remote(item) for item in items]
        index = {r: i for i, r in enumerate(refs)}
        pending = list(refs)
        while pending:
            done, pending = self.ray.wait(pending, num_returns=1)
            yield index[done[0]], self.ray.get(done[0])


def make_executor(cluster: str | None = None, workers: int | None = None, threads: int | None = None) -> Executor:
    """The executor for a cluster address (see the module docstring); ``workers=0`` runs inline."""
    if cluster is None:
        if workers == 0:
            return InlineExecutor()
        return LocalPool(workers, threads)
    if not isinstance(cluster, str):
        return DaskExecutor(cluster)
    if cluster == "ray" or cluster.startswith("ray://"):
        return RayExecutor("auto" if cluster == "ray" else cluster, threads or 1)
    if cluster.startswith(("tcp://", "tls://", "dask://")):
        return DaskExecutor(cluster.replace("dask://", "tcp://", 1))
    raise ValueError(f"cluster address must be tcp://HOST:PORT (Dask), ray://HOST:PORT or 'ray' (Ray), "
                     f"got {cluster!r}")
