#!/usr/bin/env python3
"""Run one command, bounded in time, and record what it cost.

    measure.py --out FILE.json --timeout SECONDS [--log FILE] [--own-session]
               -- CMD [ARG...]

The command runs in its own process group, in this script's session (see main for why
not a session of its own; --own-session gives it one). Every 20 ms the whole process
tree under it is sampled from /proc: the peak of the summed RSS of all its processes,
the peak RSS of the largest single process, and each process's last seen CPU time.
When it exits (or is killed on timeout: SIGTERM to the group, SIGKILL 5 s later), the
kernel's rusage of the command and every descendant it waited for is read too.

The JSON written to --out:
  launch_wall_ns    wall clock just before fork (for start-up: first request - launch)
  wall_s            launch to exit
  rc                exit status (negative: killed by that signal), timed_out
  cpu_s             max(rusage user+sys of the waited-for tree, sum of sampled CPU of
                    every process seen): a process reparented to init escapes rusage,
                    and the last 20 ms of a process escape sampling
  peak_rss_mib      peak of the summed RSS of the tree (sampled)
  peak_rss_max_proc_mib  peak RSS of the largest single process (sampled)
  ru_maxrss_mib     the kernel's figure for the waited tree, which also counts this
                    launcher's own RSS at fork time
  processes         distinct processes seen in the tree
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_stat(pid):
    """(ppid, cpu seconds, rss bytes) of pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    rest = data[data.rfind(b")") + 2 :].split()
    ppid = int(rest[1])
    cpu = (int(rest[11]) + int(rest[12])) / CLK_TCK
    rss = int(rest[21]) * PAGE
    return ppid, cpu, rss


class Tree:
    """The live processes under root. Scanning every /proc/PID/stat each tick costs
    milliseconds on a busy machine, so each PID's parent is read once, when it first
    appears, and /proc is listed for new PIDs only every SCAN_EVERY ticks (the clients
    start their processes at launch); the processes of the tree are read every tick."""

    SCAN_EVERY = 10

    def __init__(self, root):
        self.parent = {}
        self.ours = {root}
        self.ticks = 0

    def sample(self):
        """{pid: (cpu seconds, rss bytes)} of the live processes of the tree."""
        self.ticks += 1
        if self.ticks % self.SCAN_EVERY == 1:
            self.scan()
        out = {}
        for pid in self.ours:
            st = proc_stat(pid)
            if st is not None:
                out[pid] = (st[1], st[2])
        return out

    def scan(self):
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) not in self.parent:
                st = proc_stat(int(name))
                if st is not None:
                    self.parent[int(name)] = st[0]
        grew = True
        while grew:
            grew = False
            for pid, ppid in self.parent.items():
                if ppid in self.ours and pid not in self.ours:
                    self.ours.add(pid)
                    grew = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, required=True)
    ap.add_argument("--log", help="stdout and stderr of the command (default: inherit)")
    ap.add_argument("--interval", type=float, default=0.02)
    ap.add_argument("--own-session", action="store_true",
                    help="run the command in a session (and so an autogroup) of its own")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        ap.error("no command")

    log = open(a.log, "wb") if a.log else None
    launch_wall_ns = time.time_ns()
    t0 = time.monotonic()
    # A process group of its own, to be killed as one, but by default not a session of
    # its own: with the kernel's autogroups on (sched_autogroup_enabled), a new session
    # is a new scheduling group, and the scheduler splits the cores between groups
    # before threads. The server (started by the same shell as this script) and the
    # client then contend as two groups, as when each is started from its own terminal;
    # on the 2-vCPU VM that cost aiperf-gen's client about a third more CPU per request
    # (case d: 0.132-0.137 -> 0.178-0.183 CPU s per 10,000) and a tenth of its ceiling,
    # and wrk about a ninth more CPU (0.073-0.076 -> 0.083-0.085), two alternating pairs
    # of runs. Started from one shell, as a quick benchmark usually is, both share one
    # group. --own-session keeps the other setting measurable.
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT if log else None,
                            start_new_session=a.own_session,
                            preexec_fn=None if a.own_session else os.setpgrp)
    # The sampler shares the machine with the client it measures: at the lowest
    # priority (set after the fork, so the command keeps its own) its ticks wait for an
    # idle core instead of preempting the client (at 20 ms, they added 80-220 us to the
    # pacing case's p99 lateness).
    try:
        os.nice(19)
    except OSError:
        pass
    procs = Tree(proc.pid)
    cpu_seen = {}
    peak_sum = peak_one = 0
    timed_out = False
    killed_at = None
    status = None

    # The command has a process group of its own, so a Ctrl-C at the terminal reaches
    # only this script: the run is abandoned, and the command's group is ended with it
    # rather than left running (a SIGTERM likewise).
    def abandoned(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, abandoned)
    try:
        while True:
            pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                status = st
                break
            now = time.monotonic()
            live = procs.sample()
            # Processes of the group that left the tree (reparented) still count.
            for p, (cpu, rss) in live.items():
                cpu_seen[p] = cpu
            total = sum(rss for _, rss in live.values())
            peak_sum = max(peak_sum, total)
            peak_one = max(peak_one, max((rss for _, rss in live.values()), default=0))
            if not timed_out and now - t0 > a.timeout:
                timed_out = True
                killed_at = now
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            elif timed_out and now - killed_at > 5:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(a.interval)
    except KeyboardInterrupt:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        print(f"measure.py: interrupted; ended the command's process group {proc.pid}",
              file=sys.stderr)
        return 130
    wall = time.monotonic() - t0
    # Anything the command left behind in its group is ended too (by its group id).
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    rc = os.waitstatus_to_exitcode(status)
    cpu_rusage = ru.ru_utime + ru.ru_stime
    cpu_sampled = sum(cpu_seen.values())
    res = {
        "cmd": cmd,
        "launch_wall_ns": launch_wall_ns,
        "wall_s": wall,
        "rc": rc,
        "timed_out": timed_out,
        "cpu_s": max(cpu_rusage, cpu_sampled),
        "cpu_rusage_s": cpu_rusage,
        "cpu_sampled_s": cpu_sampled,
        "peak_rss_mib": max(peak_sum, 0) / 2**20,
        "peak_rss_max_proc_mib": peak_one / 2**20,
        # ru_maxrss also counts this launcher's RSS at fork time (~14 MiB of Python), so
        # it is kept for reference only.
        "ru_maxrss_mib": ru.ru_maxrss / 1024,
        "processes": len(cpu_seen),
    }
    with open(a.out, "w") as f:
        json.dump(res, f)
    return 0 if rc == 0 and not timed_out else 1


if __name__ == "__main__":
    sys.exit(main())
