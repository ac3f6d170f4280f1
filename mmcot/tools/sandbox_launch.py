"""The first code that runs inside the Python tool's sandbox: set resource limits and a seccomp filter, then exec.

Standard library only: bubblewrap binds this file read-only into the sandbox, where mmcot itself is not importable.
It runs after ``setpriv`` has dropped to the unprivileged uid, so the limits bind that uid (RLIMIT_NPROC is not
enforced for root)::

    python launch.py --as BYTES --cpu S --nproc N --fsize BYTES --nofile N --core 0 --seccomp 1 -- python -m ...

The seccomp filter (libseccomp through ctypes) denies with EPERM the calls that rearrange the sandbox or reach
other processes' memory: new namespaces, mount, ptrace, bpf, keyctl, module loading, reboot and the like. ``clone3``
answers ENOSYS so the C library falls back to ``clone``, whose namespace flags the filter can see.
"""

import ctypes
import errno
import os
import resource
import sys

LIMITS = {"--as": "RLIMIT_AS", "--cpu": "RLIMIT_CPU", "--nproc": "RLIMIT_NPROC", "--fsize": "RLIMIT_FSIZE"}
LIMITS |= {"--nofile": "RLIMIT_NOFILE", "--core": "RLIMIT_CORE"}
DENIED = (
    "unshare setns mount umount2 pivot_root chroot ptrace process_vm_readv process_vm_writev bpf perf_event_open "
    "keyctl add_key request_key userfaultfd init_module finit_module delete_module kexec_load kexec_file_load reboot "
    "swapon swapoff acct open_by_handle_at name_to_handle_at fsopen fsmount move_mount open_tree iopl ioperm"
).split()
CLONE_NEW = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x00000080)
SCMP_ACT_ALLOW, SCMP_CMP_MASKED_EQ = 0x7FFF0000, 7


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]


def install_seccomp() -> None:
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_rule_add_array.argtypes += [ctypes.POINTER(ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    eperm, enosys = 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS

    def deny(name: str, action: int, *cmps: ArgCmp) -> None:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:  # not a syscall on this architecture
            return
        if lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), (ArgCmp * max(1, len(cmps)))(*cmps)) < 0:
            raise OSError(f"seccomp rule for {name} failed")

    for name in DENIED:
        deny(name, eperm)
    deny("clone3", enosys)
    for flag in CLONE_NEW:
        deny("clone", eperm, ArgCmp(0, SCMP_CMP_MASKED_EQ, flag, flag))
    if lib.seccomp_load(ctx) < 0:
        raise OSError("seccomp_load failed")


def main(argv: list[str]) -> None:
    split = argv.index("--")
    opts, command = argv[:split], argv[split + 1 :]
    for flag, value in zip(opts[::2], opts[1::2], strict=True):
        if flag == "--seccomp":
            continue
        limit, soft = getattr(resource, LIMITS[flag]), int(value)
        # CPU: SIGXCPU at the soft limit says why the kernel ended; the hard one (SIGKILL) is a backstop
        resource.setrlimit(limit, (soft, soft + 5 if flag == "--cpu" else soft))
    if "--seccomp" in opts and opts[opts.index("--seccomp") + 1] == "1":
        install_seccomp()
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
