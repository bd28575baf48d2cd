"""The kernel that runs a student's notebook, inside a bubblewrap sandbox.

nbgrader runs a submission through nbclient, which starts a Jupyter kernel with a kernel
manager; ``SandboxedKernelManager`` (set as the kernel manager of nbgrader's Execute in
grading/config.py, so ``nbgrader autograde`` stays the instructor's command) starts that
kernel under ``bwrap`` (Debian package ``bubblewrap``). What the kernel sees:

* nothing of the host but what it needs, read-only (``bwrap_command``): the system's libraries
  (``/usr`` and the ``/lib*``, ``/bin`` links), the Python installation (the prefixes, the venv),
  a few files of ``/etc`` (the dynamic linker's cache, time zone, fonts) and the sandbox's own
  ``passwd``, ``group`` and ``hosts``, the CPU topology of ``/sys``, a minimal ``/dev``, its own
  ``/proc``; of the repository only ``data/`` and, at ``course/``, the **student build** of the
  package for the assignment being graded (grading/student_build.py: the answers of this
  assignment removed, so that no import reaches the reference); writable only a fresh scratch
  folder (its working directory, which holds nothing but the kernel's connection file: files
  submitted beside a notebook are never importable). No ``/run``, ``/var``, ``/home``, ``/srv``,
  ``/opt``, no course folder (gradebook, submissions, other students), no other folder or socket
  of the host: a read-only mount would not stop a ``connect`` to a socket, so nothing unlisted is
  mounted at all;
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

The kernel process's own stdout and stderr go to a pipe that the grader drains into a bounded
buffer (``KernelOutput``, ``MAX_KERNEL_OUTPUT_BYTES``), never to the grader's stderr or log. The
grader itself enforces what the kernel may send back as messages (grading/config.py: output caps,
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
import threading
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Enum, Integer, List, Unicode

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
# What the grader holds of a kernel's messages (Jupyter's ZeroMQ sockets, grader side): a message part
# over MAX_MESSAGE_BYTES disconnects the kernel's channel, and a channel queues at most MAX_QUEUED_MESSAGES
# (IOPub, the outputs, drops what is beyond). So a kernel that floods its outputs costs the grader at
# most about their product, whatever it writes (benchmarks/kernel_output_memory.py). A cell may keep only
# 2 MB of output anyway (grading/config.py), and the execution's reply, which carries a failed cell's
# error, comes on the shell channel, where a flooding kernel cannot crowd it out.
MAX_MESSAGE_BYTES = 4 * 2**20
MAX_QUEUED_MESSAGES = 64
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
    """Folders the kernel must not see even where they lie inside a folder it is given (an environment
    inside the repository, a course folder inside a Python prefix): covered by empty read-only folders."""
    candidates = [REPO.parent, REPO, Path(course_root).resolve(), *(Path(p).resolve() for p in extra)]
    paths = []
    for path in candidates:
        if path.exists() and path != Path("/") and path not in paths:
            paths.append(path)
    return sorted(paths, key=lambda p: len(p.parts))  # a parent before what lies inside it


# What the kernel sees of the host: nothing but these (and REPO/course, REPO/data, the scratch folder).
SYSTEM_FOLDERS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")  # read-only, links kept as links
# /etc: only what the dynamic linker, Python, torch and matplotlib read; passwd, group and hosts are the
# sandbox's own (SANDBOX_ETC). No ssl, no credentials, no service configuration.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "fonts", "mime.types")
SANDBOX_ETC = {
    "passwd": f"root:x:0:0:root:/nonexistent:/usr/sbin/nologin\nnobody:x:{65534}:{65534}:nobody:/nonexistent:/usr/sbin/nologin\n",
    "group": f"root:x:0:\nnogroup:x:{65534}:\n",
    "hosts": "127.0.0.1 localhost\n::1 localhost\n",
    "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
}
# CPU topology, read by torch's cpuinfo and OpenMP to size their thread pools (nothing else of /sys)
SYS_FILES = ("/sys/devices/system/cpu",)
_SANDBOX_ETC_FOLDER: list[Path] = []


def sandbox_etc() -> Path:
    """A folder of the grader's with the sandbox's own passwd, group, hosts (made once per process)."""
    if not _SANDBOX_ETC_FOLDER:
        folder = Path(tempfile.mkdtemp(prefix="grading-etc-"))
        for name, text in SANDBOX_ETC.items():
            (folder / name).write_text(text)
            (folder / name).chmod(0o444)
        folder.chmod(0o755)
        _SANDBOX_ETC_FOLDER.append(folder)
        _LEFTOVERS.add(folder)
    return _SANDBOX_ETC_FOLDER[0]


def python_paths() -> list[Path]:
    """The interpreter's folders: the prefixes (the venv, the base installation) and folders named in .pth files."""
    paths = [Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)]
    paths.append(Path(sys.executable).resolve().parent.parent)  # where the interpreter's binary really lives
    import site

    for packages in site.getsitepackages():
        for pth in sorted(Path(packages).glob("*.pth")):
            try:
                lines = pth.read_text().splitlines()
            except OSError:
                continue
            paths += [Path(line.strip()) for line in lines if line.strip().startswith("/") and Path(line.strip()).is_dir()]
    resolved = []
    for path in paths:
        path = path.resolve()
        if path.exists() and path != Path("/") and path not in resolved and not any(p in path.parents for p in resolved):
            resolved = [p for p in resolved if path not in p.parents] + [path]
    return resolved


def exposed_paths() -> list[Path]:
    """Everything of the host the kernel may read (besides the course package and data): system libraries, Python."""
    return [Path(p) for p in SYSTEM_FOLDERS if os.path.lexists(p)] + python_paths()


def _bind_read_only(path: Path, target: Path | None = None) -> list[str]:
    target = target or path
    if path.is_symlink():
        return ["--symlink", os.readlink(path), str(target)]
    return ["--ro-bind", str(path), str(target)]


def bwrap_command(kernel_cmd: list[str], scratch: Path, course_root: Path, extra_hidden=(), course_package: Path | None = None) -> list[str]:
    """The bwrap command line that runs ``kernel_cmd`` in the sandbox.

    The kernel's root is an empty read-only folder; into it are bound, read-only: the system's
    libraries (SYSTEM_FOLDERS), the Python installation (``python_paths``), a few files of /etc
    (ETC_FILES, SANDBOX_ETC), the CPU topology of /sys; ``course_package`` (default: the student build
    of every assignment) at ``REPO/course`` and ``REPO/data``; a minimal /dev, its own /proc; and,
    writable, only the scratch folder. Nothing else of the host exists for it: no /run, /var, /home,
    /srv, /opt, /root (but the interpreter's own prefix), no socket or folder not listed here.
    """
    if course_package is None:
        from grading.student_build import ALL_ANSWERS, student_course

        course_package = student_course(ALL_ANSWERS)
    # /tmp is the kernel's own empty tmpfs, mounted first so that what is bound below it (a repository, its
    # venv or a course folder that lives in /tmp) is bound into it rather than hidden by it
    command = [bwrap_path(), "--tmpfs", "/tmp"]
    exposed = exposed_paths()
    for path in exposed:
        command += _bind_read_only(path)
    command += ["--dir", "/etc"]
    for name in ETC_FILES:
        if os.path.lexists(f"/etc/{name}"):
            command += _bind_read_only(Path("/etc") / name)
    for name in SANDBOX_ETC:
        command += ["--ro-bind", str(sandbox_etc() / name), f"/etc/{name}"]
    for path in SYS_FILES:
        if os.path.isdir(path):
            command += ["--ro-bind", path, path]
    # what lies inside an exposed folder but must stay hidden (the repository, the course folder)
    hidden = [path for path in hidden_paths(course_root, extra_hidden) if any(e == path or e in path.parents for e in exposed)]
    for path in hidden:
        command += ["--tmpfs", str(path)]
    command += ["--ro-bind", str(course_package), str(REPO / "course")]
    if (REPO / "data").is_dir():
        command += ["--ro-bind", str(REPO / "data"), str(REPO / "data")]
    # /dev: the device nodes a program needs, read-only but for a small /dev/shm (shared memory, semaphores)
    command += ["--dev", "/dev", "--size", str(MAX_SHM_BYTES), "--tmpfs", "/dev/shm", "--remount-ro", "/dev", "--proc", "/proc"]
    command += ["--bind", str(scratch), str(scratch), "--remount-ro", "/tmp"]
    for path in hidden:
        command += ["--remount-ro", str(path)]
    command += ["--remount-ro", "/"]
    command += ["--unshare-all", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--die-with-parent", "--chdir", str(scratch), "--clearenv"]
    environment = {name: os.environ[name] for name in KEPT_ENVIRONMENT if name in os.environ}
    environment |= {"HOME": str(scratch), "MPLCONFIGDIR": str(scratch / ".matplotlib"), "MPLBACKEND": "agg",
                    "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
                    # `course` is the package bound at REPO/course, however (or wherever) the grader installed it
                    "PYTHONPATH": str(REPO),
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


MAX_KERNEL_OUTPUT_BYTES = 64 * 2**10  # of what the kernel process writes to its stdout/stderr, kept (the start and the end)


class KernelOutput:
    """The kernel process's stdout and stderr: a pipe that a thread of the grader drains into a bounded buffer.

    What a cell prints reaches the grader through Jupyter's messages (capped by grading/config.py);
    this is what the process writes outside them (a crash, an ``os.write(2, ...)``, ipykernel's echo of
    its file descriptors). It never reaches the grader's own stdout or stderr, and only the first and
    the last ``limit / 2`` bytes are kept, so that no amount of it grows the grader.
    """

    def __init__(self, limit: int = MAX_KERNEL_OUTPUT_BYTES):
        self.limit = limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self._read, self.write_fd = os.pipe()
        self._thread = threading.Thread(target=self._drain, name="kernel-output", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        half = self.limit // 2
        try:
            while True:
                data = os.read(self._read, 1 << 16)
                if not data:
                    break
                self.total += len(data)
                room = half - len(self.head)
                if room > 0:
                    self.head += data[:room]
                    data = data[room:]
                if data:
                    self.tail = (self.tail + data)[-half:]
        except OSError:
            pass
        finally:
            os.close(self._read)

    def parent_started(self) -> None:
        """Close the grader's copy of the writing end once the kernel holds it (end of file when the kernel exits)."""
        if self.write_fd is not None:
            os.close(self.write_fd)
            self.write_fd = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every process of the kernel has closed its output (the kernel is gone); True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def text(self) -> str:
        """What the kernel wrote, cut in the middle beyond the limit."""
        dropped = self.total - len(self.head) - len(self.tail)
        middle = f"\n... {dropped} bytes of kernel output dropped ...\n".encode() if dropped > 0 else b""
        return (bytes(self.head) + middle + bytes(self.tail)).decode(errors="replace")


def nbgrader_assignment() -> str:
    """The assignment the running nbgrader command works on (``nbgrader autograde <assignment>``), or ""."""
    try:
        from traitlets.config import Application

        if Application.initialized():
            coursedir = getattr(Application.instance(), "coursedir", None)
            return str(getattr(coursedir, "assignment_id", "") or "")
    except Exception:  # not inside nbgrader: no assignment
        pass
    return ""


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels run in bubblewrap, talking to the grader over Unix sockets.

    The kernel imports the student build of ``course`` (grading/student_build.py) for the assignment
    being graded: ``assignment`` when configured, else the assignment of the nbgrader command that
    runs (``nbgrader autograde <assignment>``), else the name of the notebook's folder when it is an
    assignment's; when none is known, the build without the answers of every assignment.
    ``course_build = "reference"`` (``ReferenceKernelManager``) gives the full package: only for the
    reference solution's own run, never for a student's notebook.
    """

    sandbox = Bool(True, help="run the kernel in bubblewrap; False only for debugging the grader itself").tag(config=True)
    course_root = Unicode("", help="the course folder hidden from the kernel (default: the working directory)").tag(config=True)
    extra_hidden = List(Unicode(), help="more folders the kernel must not see").tag(config=True)
    max_memory = Integer(MAX_MEMORY, help="bytes of memory for all the kernel's processes together").tag(config=True)
    max_scratch_bytes = Integer(MAX_SCRATCH_BYTES, help="bytes the kernel may write into its scratch folder, in all").tag(config=True)
    assignment = Unicode("", help="the assignment whose student build of course the kernel imports (default: nbgrader's)").tag(config=True)
    course_build = Enum(["student", "reference"], "student",
                        help="'student': course without this assignment's answers; 'reference': the full package").tag(config=True)
    max_kernel_output = Integer(MAX_KERNEL_OUTPUT_BYTES, help="bytes of the kernel process's stdout/stderr kept").tag(config=True)

    _scratch: Path | None = None
    _cgroups: list[Path] = []

    def client(self, **kwargs):
        """Jupyter's client for the kernel, every socket of it bounded in what it queues (MAX_QUEUED_MESSAGES,
        MAX_MESSAGE_BYTES). The client makes its own ZeroMQ context, whose defaults apply to the channels'
        sockets, made when the channels start."""
        import zmq

        client = super().client(**kwargs)
        client.context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        client.context.setsockopt(zmq.RCVHWM, MAX_QUEUED_MESSAGES)
        return client
    _notebook_folder: str = ""
    kernel_output: KernelOutput | None = None

    def graded_assignment(self) -> str:
        """The assignment whose student build the kernel gets ("" when unknown)."""
        from grading.student_build import ANSWERS

        folder = Path(self._notebook_folder).name if self._notebook_folder else ""
        return self.assignment or nbgrader_assignment() or (folder if folder in ANSWERS else "")

    def course_package(self) -> Path:
        """The folder the kernel sees as ``course``."""
        from grading.student_build import ALL_ANSWERS, COURSE, student_course

        if self.course_build == "reference":
            return COURSE
        return student_course(self.graded_assignment() or ALL_ANSWERS)

    async def _async_pre_start_kernel(self, **kw):
        self._notebook_folder = str(kw.get("cwd") or "")
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
        package = self.course_package()
        self.log.info("sandboxed kernel for %s: course is %s", self.graded_assignment() or "an unknown assignment", package)
        command = bwrap_command(list(kernel_cmd), self._scratch, course_root, [Path(p) for p in self.extra_hidden],
                                course_package=package)
        kw["cwd"] = str(self._scratch)
        kw["env"] = {}
        kw["preexec_fn"] = limit_kernel(self._cgroups)
        # the kernel process's own output: into a bounded buffer of the grader's, never the grader's stderr
        self.kernel_output = KernelOutput(self.max_kernel_output)
        kw["stdout"] = kw["stderr"] = self.kernel_output.write_fd
        try:
            return await super()._async_launch_kernel(command, **kw)
        finally:
            self.kernel_output.parent_started()

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if self.kernel_output is not None and self.kernel_output.total:
            self.log.debug("the kernel wrote %d bytes to its stdout/stderr", self.kernel_output.total)
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


class ReferenceKernelManager(SandboxedKernelManager):
    """The sandbox with the full ``course`` package: for the reference solution's run (grading/reports.py) only."""

    course_build = Enum(["student", "reference"], "reference").tag(config=True)
