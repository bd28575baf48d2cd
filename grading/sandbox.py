"""The kernel that runs a student's notebook, inside a bubblewrap sandbox.

nbgrader runs a submission through nbclient, which starts a Jupyter kernel with a kernel
manager; ``SandboxedKernelManager`` (set as the kernel manager of nbgrader's Execute in
grading/config.py, so ``nbgrader autograde`` stays the instructor's command) starts that
kernel under ``bwrap`` (Debian package ``bubblewrap``). What the kernel sees:

* the filesystem read-only; writable only a fresh scratch folder (its working directory,
  which holds nothing but the kernel's connection file: files submitted beside a notebook are
  never importable, since the working directory comes first on ``sys.path``);
* no course folder (gradebook, submissions, other students), no repository (``solutions/``,
  ``_build/``, ``_grading/``, ``grading/``) except the read-only ``course/`` package and
  ``data/`` that the exercises import, no home folders, no ``/var``, ``/opt``, an empty
  read-only ``/tmp``, and none of the files under ``/etc`` that not everyone may read;
* no network (its own network namespace; the kernel talks to the grader over Unix sockets
  in the scratch folder, Jupyter's ``ipc`` transport), its own PID, IPC and UTS namespaces:
  it cannot see or signal the grader, and everything it starts dies with it;
* a minimal environment (no variables of the grader's but ``PATH``, the locale and
  ``COURSE_PROFILE``; ``COURSE_REPORTS_DIR`` names the scratch folder's ``reports/``, where the
  hidden tests' results are written for the grader to compare: grading/reports.py), user "nobody" in a user namespace of its own, without capabilities;
* resource limits (``KERNEL_LIMITS``): address space, file size, CPU time, open files per
  process; for the kernel as a whole, processes and threads (``MAX_PROCESSES``) and memory
  (``MAX_MEMORY``, files in memory included) through "pids" and "memory" control groups, and
  the scratch folder's total size (``MAX_SCRATCH_BYTES``: a tmpfs of that size, mounted by the
  grader) and ``/dev/shm``'s (``MAX_SHM_BYTES``; the rest of ``/dev`` read-only), where the
  grader may create them (as root; otherwise a warning says which limit is off).

The grader itself enforces what the kernel may send back (grading/config.py: output caps,
per-cell timeout).
"""

import asyncio
import atexit
import ctypes
import os
import random
import resource
import signal
import shutil
import sys
import tempfile
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Integer, List, Unicode

from course.channel import REPORTS_ENVIRONMENT

REPORTS_FOLDER = "reports"  # in the scratch folder: the results the hidden tests hand to the grader (grading/reports.py)

REPO = Path(__file__).resolve().parent.parent

# Limits on the sandboxed kernel (each process in it), applied just before bwrap starts.
KERNEL_LIMITS = {
    "RLIMIT_AS": 6 * 2**30,  # address space; torch needs about 1.5 GiB of it just to import
    "RLIMIT_FSIZE": 64 * 2**20,  # the largest file the kernel may write
    "RLIMIT_CPU": 900,  # seconds of CPU per process, a backstop to the per-cell timeout
    "RLIMIT_CORE": 0,
    "RLIMIT_NOFILE": 1024,
}
# Limits on the kernel as a whole, through control groups where the grader may create them (as
# root, cgroup v1 or delegated v2): processes and threads (torch and ipykernel need a few dozen
# threads), and memory of all its processes together, files in its tmpfs folders included (above
# RLIMIT_AS, so that one process asking too much gets a MemoryError, not the OOM killer).
MAX_PROCESSES = 256
MAX_MEMORY = 8 * 2**30
# Disk: everything the kernel may write, in all. The scratch folder is a tmpfs of this size (and
# at most MAX_SCRATCH_FILES files) where the grader may mount one; /dev/shm is a tmpfs of its own.
MAX_SCRATCH_BYTES = 256 * 2**20
MAX_SCRATCH_FILES = 10_000
MAX_SHM_BYTES = 64 * 2**20
SANDBOX_UID = 65534  # the kernel's user inside its user namespace ("nobody"), with no capabilities
KEPT_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "COURSE_PROFILE", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# Scratch folders and control groups of this grader's kernels not yet removed: a kernel that
# died or was killed may skip the kernel manager's cleanup, so what is left goes at exit.
_LEFTOVERS: set[Path] = set()


@atexit.register
def _remove_leftovers() -> None:
    for path in sorted(_LEFTOVERS, key=lambda p: str(p).startswith("/sys")):
        if str(path).startswith("/sys"):
            try:
                path.rmdir()
            except OSError:
                pass
        else:
            remove_scratch(path)


_LIBC = ctypes.CDLL(None, use_errno=True)
_MS_NOSUID, _MS_NODEV, _MNT_DETACH = 2, 4, 2


def mount_scratch(path: Path, size: int = MAX_SCRATCH_BYTES, files: int = MAX_SCRATCH_FILES) -> bool:
    """Make the (empty) folder ``path`` a tmpfs of ``size`` bytes and ``files`` files; False where the grader may not mount."""
    options = f"size={size},nr_inodes={files},mode=0700".encode()
    return _LIBC.mount(b"tmpfs", os.fsencode(path), b"tmpfs", _MS_NOSUID | _MS_NODEV, options) == 0


def remove_scratch(path: Path) -> None:
    """Unmount the scratch folder's tmpfs, if it is one, and delete the folder."""
    if os.path.ismount(path):
        _LIBC.umount2(os.fsencode(path), _MNT_DETACH)
    shutil.rmtree(path, ignore_errors=True)


class SandboxUnavailable(RuntimeError):
    pass


def bwrap_path() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable(
            "bubblewrap (`bwrap`) is not installed: the grader runs student notebooks only inside it. "
            "Install it (Debian/Ubuntu: `apt-get install bubblewrap`)."
        )
    return path


def hidden_paths(course_root: Path, extra=()) -> list[Path]:
    """Folders the kernel must not see: replaced by empty read-only folders in the sandbox."""
    candidates = [Path("/tmp"), Path("/var"), Path("/home"), Path("/root"), Path("/mnt"), Path("/media"), Path("/srv"),
                  Path("/boot"), Path("/opt"), REPO.parent, REPO, course_root.resolve(), *extra]
    paths = []
    for path in candidates:
        if path.exists() and path != Path("/") and path not in paths:
            paths.append(path)
    return sorted(paths, key=lambda p: len(p.parts))  # a parent before what lies inside it


def private_system_files() -> list[Path]:
    """Files under /etc that not everyone may read (/etc/shadow, host keys): the kernel's user maps to
    the grader's, so it could read what the grader's user owns; they are replaced by empty files."""
    private = []
    for root, folders, files in os.walk("/etc"):
        for name in files + folders:
            path = Path(root) / name
            try:
                if not path.is_symlink() and not path.stat().st_mode & 0o004:
                    private.append(path)
            except OSError:
                continue
        folders[:] = [f for f in folders if (Path(root) / f) not in private]
    return private


def exposed_paths() -> list[Path]:
    """What the kernel may read inside the hidden folders: Python (the environment), the course package, its data."""
    paths = [Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), REPO / "course", REPO / "data"]
    return [p for p in dict.fromkeys(paths) if p.exists()]


def bwrap_command(kernel_cmd: list[str], scratch: Path, course_root: Path, extra_hidden=()) -> list[str]:
    # /dev: the device nodes a program needs, read-only but for a small /dev/shm (shared memory, semaphores)
    command = [bwrap_path(), "--ro-bind", "/", "/", "--dev", "/dev", "--size", str(MAX_SHM_BYTES), "--tmpfs", "/dev/shm",
               "--remount-ro", "/dev", "--proc", "/proc"]
    hidden = hidden_paths(course_root, extra_hidden)
    for path in hidden:
        command += ["--tmpfs", str(path)]
    for path in exposed_paths():
        if any(path == h or h in path.parents for h in hidden):
            command += ["--ro-bind", str(path), str(path)]
    for path in private_system_files():
        command += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
    command += ["--bind", str(scratch), str(scratch)]
    for path in hidden:
        command += ["--remount-ro", str(path)]
    command += ["--unshare-all", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--die-with-parent", "--chdir", str(scratch), "--clearenv"]
    environment = {name: os.environ[name] for name in KEPT_ENVIRONMENT if name in os.environ}
    environment |= {"HOME": str(scratch), "MPLCONFIGDIR": str(scratch / ".matplotlib"), "MPLBACKEND": "agg",
                    "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
                    REPORTS_ENVIRONMENT: str(scratch / REPORTS_FOLDER)}
    for name, value in environment.items():
        command += ["--setenv", name, value]
    return command + ["--", *kernel_cmd]


CGROUP_CONTROLLERS = ("pids", "memory")


def _cgroup_limits(controller: str, max_memory: int) -> tuple[list, list]:
    """(the limit, written to the first of these files that exists; likewise an optional one): cgroup v1's name, then v2's."""
    if controller == "pids":
        return [("pids.max", MAX_PROCESSES)], []
    swap = [("memory.memsw.limit_in_bytes", max_memory), ("memory.swap.max", 0)]  # no swap either
    return [("memory.limit_in_bytes", max_memory), ("memory.max", max_memory)], swap


def _cgroup_parents(controller: str) -> list[Path]:
    """Where the grader may create a group of ``controller``: below its own group (v1, or v2 with it delegated)."""
    own = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            for name in names.split(","):
                own[name] = path.strip().lstrip("/")
    except OSError:
        return []
    parents = []
    if controller in own:  # cgroup v1: the controller's own hierarchy
        parents += [Path("/sys/fs/cgroup") / controller / own[controller], Path("/sys/fs/cgroup") / controller]
    if "" in own:  # cgroup v2: one hierarchy, where the controller is enabled for children
        for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
            unified = root / own[""]
            try:
                if controller in (unified / "cgroup.subtree_control").read_text().split():
                    parents.append(unified)
            except OSError:
                pass
    return [parent for parent in dict.fromkeys(parents) if (parent / "cgroup.procs").exists()]


def _write_limits(group: Path, limits) -> bool:
    for name, value in limits:
        if (group / name).exists():
            try:
                (group / name).write_text(str(value))
                return True
            except OSError:
                return False
    return False


def kernel_cgroups(max_memory: int = MAX_MEMORY) -> tuple[list[Path], list[str]]:
    """Fresh control groups that limit a kernel's processes and memory: (the groups, the controllers left unlimited).

    cgroup v1 has a group per controller; in v2 one group carries both limits.
    """
    name = f"grading-kernel-{os.getpid()}-{random.randrange(10**9)}"
    groups, missing = [], []
    for controller in CGROUP_CONTROLLERS:
        limits, optional = _cgroup_limits(controller, max_memory)
        for parent in _cgroup_parents(controller):
            group = parent / name
            fresh = group not in groups
            try:
                group.mkdir(exist_ok=not fresh)
            except OSError:
                continue
            if _write_limits(group, limits):
                _write_limits(group, optional)
                if fresh:
                    groups.append(group)
                break
            if fresh:
                try:
                    group.rmdir()
                except OSError:
                    pass
        else:
            missing.append(controller)
    return groups, missing


def limit_kernel(cgroups: list[Path] = ()):
    """Popen's preexec_fn: join the kernel's control groups, apply KERNEL_LIMITS."""

    def apply() -> None:
        # Jupyter interrupts a kernel with SIGINT to its process group, bwrap included: bwrap must
        # survive it (the kernel installs its own handler while it runs a cell).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for group in cgroups:
            (group / "cgroup.procs").write_text(str(os.getpid()))
        for name, soft in KERNEL_LIMITS.items():
            limit = getattr(resource, name)
            _, hard = resource.getrlimit(limit)
            if hard != resource.RLIM_INFINITY:
                soft = min(soft, hard)
            resource.setrlimit(limit, (soft, soft if name != "RLIMIT_CPU" else hard))

    return apply


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels run in bubblewrap, talking to the grader over Unix sockets."""

    sandbox = Bool(True, help="run the kernel in bubblewrap; False only for debugging the grader itself").tag(config=True)
    course_root = Unicode("", help="the course folder hidden from the kernel (default: the working directory)").tag(config=True)
    extra_hidden = List(Unicode(), help="more folders the kernel must not see").tag(config=True)
    max_memory = Integer(MAX_MEMORY, help="bytes of memory for all the kernel's processes together").tag(config=True)
    max_scratch_bytes = Integer(MAX_SCRATCH_BYTES, help="bytes the kernel may write into its scratch folder, in all").tag(config=True)

    _scratch: Path | None = None
    _cgroups: list[Path] = []

    async def _async_pre_start_kernel(self, **kw):
        if self.sandbox:
            bwrap_path()  # fail early, with the reason, where bubblewrap is missing
        self._scratch = Path(tempfile.mkdtemp(prefix="grading-kernel-"))
        _LEFTOVERS.add(self._scratch)
        if self.sandbox and not mount_scratch(self._scratch, self.max_scratch_bytes):
            self.log.warning("the grader may not mount a tmpfs (not root?): the kernel's scratch folder has no total size limit")
        (self._scratch / REPORTS_FOLDER).mkdir()  # where course.checks.report writes the hidden tests' results
        if not self.sandbox:  # a plain kernel, for debugging the grader: it still hands its reports over
            kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
            kw["env"] = {**kw.get("env", os.environ), REPORTS_ENVIRONMENT: str(self._scratch / REPORTS_FOLDER)}
            return kernel_cmd, kw
        self.transport = "ipc"
        self.connection_file = str(self._scratch / "kernel.json")
        self.ip = str(self._scratch / "kernel")
        return await super()._async_pre_start_kernel(**kw)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        if not self.sandbox:
            return await super()._async_launch_kernel(kernel_cmd, **kw)
        self._cgroups, missing = kernel_cgroups(self.max_memory)
        _LEFTOVERS.update(self._cgroups)
        for controller in missing:
            self.log.warning("no %s control group available: the kernel's %s is not limited", controller,
                             "number of processes" if controller == "pids" else "total memory")
        course_root = Path(self.course_root or os.getcwd())
        command = bwrap_command(list(kernel_cmd), self._scratch, course_root, [Path(p) for p in self.extra_hidden])
        kw["cwd"] = str(self._scratch)
        kw["env"] = {}
        kw["preexec_fn"] = limit_kernel(self._cgroups)
        return await super()._async_launch_kernel(command, **kw)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if self._scratch is not None and not restart:
            remove_scratch(self._scratch)
            _LEFTOVERS.discard(self._scratch)
            self._scratch = None
        if self._cgroups and not restart:
            for group in self._cgroups:
                for _ in range(50):  # the kernel's processes are gone a moment after it is killed
                    try:
                        group.rmdir()
                        _LEFTOVERS.discard(group)
                        break
                    except OSError:
                        await asyncio.sleep(0.1)
            self._cgroups = []
