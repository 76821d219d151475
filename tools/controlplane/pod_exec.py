"""Start one container process the way the pod runner's "kubelet" would.

Run as root inside a fresh private mount namespace (`unshare --mount`):
    pod_exec.py SPEC.json
SPEC: {"hosts": path, "mounts": [{"source", "target", "readOnly"}], "readOnlyRoot": bool,
       "env": {...}, "argv": [...], "workingDir": path|None, "scratch": dir,
       "keepVisible": [path, ...]}

It bind-mounts the pod's /etc/hosts (cluster DNS) and volumes at their mount paths,
binds back the host paths the command needs (the checkout and its virtualenv) where a
volume hid them (an emptyDir at /tmp over a checkout in /tmp), optionally makes the
root filesystem read-only, then execs the command. A mount
path that does not exist on the host is created inside an overlay of its nearest
existing parent, so nothing is ever created outside the work directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run(*argv: str, fds: tuple[int, ...] = ()) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, pass_fds=fds)
    if result.returncode != 0:
        raise SystemExit(f"pod_exec: {' '.join(argv)}: {result.stderr.strip()}")


def bind(fd: int, target: Path) -> None:
    """Bind-mount what `fd` (an O_PATH handle) points at: it stays reachable even
    after an earlier mount hid its path (e.g. an emptyDir mounted over /tmp).
    --no-canonicalize: mount(8) would otherwise turn /proc/self/fd/N back into the
    path name, which now leads to whatever hides it."""
    run("mount", "--no-canonicalize", "--bind", f"/proc/self/fd/{fd}", str(target), fds=(fd,))


def hidden(path: str, fd: int) -> bool:
    """True when `path` no longer leads to what `fd` was opened on."""
    try:
        now = os.stat(path)
    except OSError:
        return True
    was = os.fstat(fd)
    return (now.st_dev, now.st_ino) != (was.st_dev, was.st_ino)


def ensure_mountpoint(target: Path, scratch: Path, overlaid: set[Path]) -> None:
    if target.exists():
        return
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    parent = parent.resolve()
    if parent not in overlaid:
        name = str(parent).strip("/").replace("/", "_") or "root"
        upper, work = scratch / "overlay" / name / "upper", scratch / "overlay" / name / "work"
        upper.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        run("mount", "-t", "overlay", "overlay", "-o",
            f"lowerdir={parent},upperdir={upper},workdir={work}", str(parent))
        overlaid.add(parent)
    target.mkdir(parents=True, exist_ok=True)


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    scratch = Path(spec["scratch"])
    overlaid: set[Path] = set()
    # Open every source first: a mount may hide the directory the others live in.
    mounts = sorted(spec.get("mounts", []), key=lambda m: len(Path(m["target"]).parts))
    handles = [os.open(m["source"], os.O_PATH) for m in mounts]
    is_dir = [os.path.isdir(m["source"]) for m in mounts]
    hosts = os.open(spec["hosts"], os.O_PATH) if spec.get("hosts") else None
    keep = [(path, os.open(path, os.O_PATH)) for path in spec.get("keepVisible", [])
            if os.path.isdir(path)]
    scratch.mkdir(parents=True, exist_ok=True)
    for mount, fd, directory in zip(mounts, handles, is_dir, strict=True):
        target = Path(mount["target"])
        if directory:
            ensure_mountpoint(target, scratch, overlaid)
        else:
            ensure_mountpoint(target.parent, scratch, overlaid)
            if not target.exists():
                target.touch()
        bind(fd, target)
        if mount.get("readOnly"):
            run("mount", "-o", "remount,bind,ro", str(target))
    for path, fd in sorted(keep, key=lambda k: len(Path(k[0]).parts)):
        if hidden(path, fd):
            ensure_mountpoint(Path(path), scratch, overlaid)
            bind(fd, Path(path))
    # Last: a volume at a path that did not exist overlays its parent (/etc for
    # /etc/brook), which would hide a hosts file bound earlier.
    if hosts is not None:
        bind(hosts, Path("/etc/hosts"))
    if spec.get("readOnlyRoot"):
        # Best effort: some sandboxes refuse to remount /; the pod runner logs it.
        result = subprocess.run(["mount", "-o", "remount,bind,ro", "/"], capture_output=True, text=True)
        if result.returncode != 0:
            print(f"pod_exec: read-only root not enforced: {result.stderr.strip()}", file=sys.stderr)
    if spec.get("workingDir"):
        os.chdir(spec["workingDir"])
    argv_ = spec["argv"]
    sys.stdout.flush()
    os.execvpe(argv_[0], argv_, spec["env"])
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
