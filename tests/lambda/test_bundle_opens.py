#!/usr/bin/env python3
"""Checks that a Lambda bundle loaded and opened only its own files.

    test_bundle_opens.py --bundle DIR [--root PATH ...]
                         [--trace DIR] [--ld DIR] [--min-processes N]

--bundle  the zip, or the unpacked zip; its lib/ is the list of
          libraries the program must load, all of them and no others
--root    LAMBDA_TASK_ROOT as the function saw it (e.g. /var/task in a
          chroot); the folders of the bootstraps in the strace output are
          added as roots
--trace   strace -ff output (trace.PID) of open, openat and execve
--ld      LD_DEBUG=libs output (ld.PID) of the loader

What is checked:
  - every object the bundle's loader initialised ("calling init:") is a
    file of ROOT/lib, and every file of the bundle's lib/ was initialised,
    so the zip carries exactly the libraries the program loads;
  - the loader searched no folder outside ROOT/lib and never read
    /etc/ld.so.cache;
  - after bootstrap handed over to the bundle (the execve of ROOT/lib/ld-*
    or of qemu-aarch64-static), every open or openat names a path under a
    root or /tmp, or one of the /proc, /sys and /dev paths in
    ALLOWED_PREFIXES. Failed opens count too. A failed open counts because
    on Lambda the same path may exist and hand the program a file of
    Amazon Linux.

The shell that runs bootstrap is the runtime's, not the bundle's, so what
it loads and opens before that execve is not checked. Prints one line per
problem; exits 1 when there is any, 0 otherwise.
"""

import argparse
import os
import re
import sys
import zipfile

# Paths outside the bundle that the program may open, all of them kernel
# interfaces that Lambda has too, or absent files whose presence would
# change nothing that Sinatra uses:
#   - glibc and FFmpeg read the CPU count and features from /proc/self,
#     /proc/cpuinfo and /sys/devices/system/cpu; libnuma (linked by libx265) reads
#     /sys/devices/system/node when it is loaded;
#   - libselinux reads /proc/filesystems when it is loaded;
#   - OpenSSL and libgcrypt read /proc/sys/crypto/fips_enabled;
#   - libgcrypt (loaded through libavformat's GnuTLS) reads
#     /etc/gcrypt/hwf.deny, which can only switch off CPU features of
#     libgcrypt, a library Sinatra never calls;
#   - /dev/urandom and /dev/random seed the random generators.
ALLOWED_PREFIXES = (
    "/tmp/",
    "/proc/self/",
    "/proc/thread-self/",
    "/proc/filesystems",
    "/proc/cpuinfo",
    "/proc/sys/crypto/fips_enabled",
    "/sys/devices/system/cpu/",
    "/sys/devices/system/node",
    "/etc/gcrypt/hwf.deny",
    "/dev/null",
    "/dev/urandom",
    "/dev/random",
)
ALLOWED_PATTERNS = (re.compile(r"^/proc/\d+/"),)

MAX_PRINTED = 40

# The files that qemu-user opens for itself when it starts a program.
QEMU_OWN = ("/proc/sys/vm/mmap_min_addr", "/proc/self/maps",
            "/proc/self/auxv")

SYSCALL_RE = re.compile(
    r'^(?:\[pid +\d+\] )?(open|openat|execve)\((?:AT_FDCWD, |\d+<?[^,]*, )?'
    r'"((?:[^"\\]|\\.)*)"(.*)$')
RESULT_RE = re.compile(r"= (-?\d+)")


def unescape(path):
    return bytes(path, "utf-8").decode("unicode_escape")


def under(path, root):
    root = root.rstrip("/")
    return path == root or path.startswith(root + "/")


def allowed(path, roots):
    if any(under(path, r) for r in roots):
        return True
    if any(path == p or path.startswith(p) for p in ALLOWED_PREFIXES):
        return True
    return any(p.match(path) for p in ALLOWED_PATTERNS)


def read_trace(path):
    """Returns [(syscall, path, result)] of one strace -ff file."""
    calls = []
    with open(path, errors="replace") as fh:
        for line in fh:
            m = SYSCALL_RE.match(line.strip())
            if m is None:
                continue
            r = RESULT_RE.search(m.group(3))
            result = int(r.group(1)) if r else None
            calls.append((m.group(1), unescape(m.group(2)), result))
    return calls


def is_handover(call, roots):
    syscall, path, result = call
    if syscall != "execve" or result != 0:
        return False
    if path.endswith("/qemu-aarch64-static"):
        return True
    return any(under(path, r) and os.path.basename(path).startswith("ld-")
               for r in roots)


def trace_roots(trace_dir):
    """Returns the code folders seen in execve calls: the folder of each
    bootstrap, and for a run under qemu, the folder above the loader's
    lib/ (qemu's first argument)."""
    roots = set()
    for name in os.listdir(trace_dir):
        with open(os.path.join(trace_dir, name), errors="replace") as fh:
            for line in fh:
                m = SYSCALL_RE.match(line.strip())
                if m is None or m.group(1) != "execve" or \
                        not m.group(3).rstrip().endswith("= 0"):
                    continue
                path = unescape(m.group(2))
                if path.endswith("/bootstrap"):
                    roots.add(os.path.dirname(path))
                qemu = re.match(r', \["[^"]*", "([^"]*)"', m.group(3))
                if path.endswith("/qemu-aarch64-static") and qemu:
                    roots.add(os.path.dirname(os.path.dirname(
                        unescape(qemu.group(1)))))
    return roots


def check_trace(trace_dir, roots, problems):
    """Checks the opens of every process; returns how many processes
    handed over to the bundle."""
    handovers = 0
    for name in sorted(os.listdir(trace_dir)):
        calls = read_trace(os.path.join(trace_dir, name))
        started = [i for i, c in enumerate(calls) if is_handover(c, roots)]
        has_bootstrap = any(c[0] == "execve" and c[1].endswith("/bootstrap")
                            for c in calls)
        if has_bootstrap and not started:
            problems.append("%s: bootstrap never started the bundle's "
                            "loader" % name)
            continue
        first = started[0] if started else 0
        handovers += 1 if started else 0
        qemu = any(calls[i][1].endswith("qemu-aarch64-static")
                   for i in started)
        for syscall, path, result in calls[first + 1:]:
            if not path.startswith("/"):
                continue        # relative to the working directory
            if qemu and path in QEMU_OWN:
                continue
            if not allowed(path, roots):
                problems.append("%s: %s(\"%s\") = %s outside the bundle"
                                % (name, syscall, path, result))
    return handovers


def split_programs(lines):
    """Splits LD_DEBUG output into (program, lines) per exec: each part
    ends with "transferring control: PROGRAM"; what follows the last one
    (dlopen, fini) belongs to the last program."""
    parts, current = [], []
    for line in lines:
        current.append(line)
        m = re.search(r"transferring control: (.*)$", line)
        if m:
            parts.append([m.group(1).strip(), current])
            current = []
    if parts:
        parts[-1][1].extend(current)
    elif current:
        parts.append(["?", current])
    return parts


def check_ld(ld_dir, roots, bundle_libs, problems):
    """Checks the loader output of every run of sinatra-lambda; returns the
    number of runs seen."""
    runs = 0
    for name in sorted(os.listdir(ld_dir)):
        with open(os.path.join(ld_dir, name), errors="replace") as fh:
            parts = split_programs(fh.read().splitlines())
        for program, lines in parts:
            if os.path.basename(program) != "sinatra-lambda":
                continue        # the runtime's shell
            runs += 1
            loaded = set()
            for line in lines:
                m = re.search(r"calling init: (.*)$", line)
                if m:
                    path = m.group(1).strip()
                    if not any(under(path, r + "/lib") for r in roots):
                        problems.append("%s: loaded %s from outside the "
                                        "bundle" % (name, path))
                    loaded.add(os.path.basename(path))
                m = re.search(r"trying file=(.*)$", line)
                if m and not any(under(m.group(1), r) for r in roots):
                    problems.append("%s: the loader tried %s" % (
                        name, m.group(1)))
                if "search cache=" in line:
                    problems.append("%s: the loader read %s" % (
                        name, line.split("search cache=")[1]))
            # The loader runs no init of its own.
            missing = bundle_libs - loaded - {n for n in bundle_libs
                                               if n.startswith("ld-")}
            if missing:
                problems.append("%s: lib/ files never loaded (dead weight "
                                "in the zip): %s" % (name,
                                                     " ".join(sorted(missing))))
    return runs


def bundle_library_names(bundle):
    """Returns the file names in lib/ of a zip or a folder."""
    if os.path.isdir(bundle):
        return set(os.listdir(os.path.join(bundle, "lib")))
    with zipfile.ZipFile(bundle) as z:
        return {n[len("lib/"):] for n in z.namelist()
                if n.startswith("lib/") and len(n) > len("lib/")}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--root", action="append", default=[])
    ap.add_argument("--trace")
    ap.add_argument("--ld")
    ap.add_argument("--min-processes", type=int, default=1)
    args = ap.parse_args(argv)

    bundle_libs = bundle_library_names(args.bundle)
    roots = set(r.rstrip("/") for r in args.root)
    if args.trace:
        roots |= trace_roots(args.trace)
    problems = []
    for folder in (args.trace, args.ld):
        if folder and not os.path.isdir(folder):
            problems.append("%s: not found; the function never started"
                            % folder)
            print("test_bundle_opens.py: " + problems[-1])
            return 1
    if not roots:
        problems.append("no root: no --root given and no bootstrap execve "
                        "in %s" % args.trace)

    if args.trace:
        n = check_trace(args.trace, roots, problems)
        if n < args.min_processes:
            problems.append("%s: %d processes ran the bundle, expected at "
                            "least %d" % (args.trace, n, args.min_processes))
    if args.ld:
        n = check_ld(args.ld, roots, bundle_libs, problems)
        if n < args.min_processes:
            problems.append("%s: %d runs of sinatra-lambda in the loader "
                            "output, expected at least %d"
                            % (args.ld, n, args.min_processes))

    problems = sorted(set(problems))
    for p in problems[:MAX_PRINTED]:
        print("test_bundle_opens.py: " + p)
    if len(problems) > MAX_PRINTED:
        print("test_bundle_opens.py: ... and %d more problems"
              % (len(problems) - MAX_PRINTED))
    if problems:
        return 1
    print("test_bundle_opens.py: %s: only bundle files loaded and opened "
          "(roots: %s)" % (args.bundle, " ".join(sorted(roots))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
