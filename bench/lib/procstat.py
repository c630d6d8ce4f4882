"""CPU time and resident memory of a server's process tree, read from /proc.

  procstat.py cpu PID                 utime+stime of PID and every descendant, in microseconds
  procstat.py rss PID                 VmRSS of PID and every descendant, in KiB
  procstat.py rss-max PID SECONDS     largest `rss` seen, sampled every 100 ms for SECONDS
  procstat.py core-busy CPU           non-idle time of one CPU since boot, in microseconds

core-busy (user+nice+system+irq+softirq+steal of the `cpuN` line of /proc/stat) minus the server's
and the upstream's CPU over a run is what other processes took from the servers' core: the noise.

CPU comes from /proc/PID/stat fields 14 and 15 (utime, stime; proc(5)), which count every thread
of the process, live or exited, in clock ticks (SC_CLK_TCK, 100 Hz: 10 ms resolution, so runs are
long enough for that to be noise). A tree is PID plus the processes whose parent chain reaches it
(nginx's master and worker; a gateway that forks helpers).
"""

import os
import sys
import time

TICK_US = 1_000_000 / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list:
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    # comm (field 2) may hold spaces and parentheses: split after its closing ')'.
    return text[text.rindex(")") + 2 :].split()


def tree(root: int) -> list:
    """root and its descendants that are alive now."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(_stat(int(entry))[1])
            except (OSError, ValueError, IndexError):
                pass
    found = [root]
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in found and pid not in found:
                found.append(pid)
                changed = True
    return found


def cpu_us(root: int) -> int:
    total = 0
    for pid in tree(root):
        try:
            fields = _stat(pid)
        except OSError:
            continue
        # after the comm split: index 0 is field 3 (state), so utime (14) is 11, stime (15) is 12.
        total += int(fields[11]) + int(fields[12])
    return int(total * TICK_US)


def rss_kib(root: int) -> int:
    total = 0
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def core_busy_us(cpu: int) -> int:
    with open("/proc/stat") as f:
        for line in f:
            fields = line.split()
            if fields[0] == f"cpu{cpu}":
                user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
                return int((user + nice + system + irq + softirq + steal) * TICK_US)
    raise ValueError(f"no cpu{cpu} in /proc/stat")


def main() -> None:
    what, pid = sys.argv[1], int(sys.argv[2])
    if what == "cpu":
        print(cpu_us(pid))
    elif what == "core-busy":
        print(core_busy_us(pid))
    elif what == "rss":
        print(rss_kib(pid))
    elif what == "rss-max":
        end = time.monotonic() + float(sys.argv[3])
        peak = 0
        while time.monotonic() < end:
            peak = max(peak, rss_kib(pid))
            time.sleep(0.1)
        print(peak)
    else:
        sys.exit(f"procstat.py: unknown command {what}")


if __name__ == "__main__":
    main()
