"""Load while a run goes on: these machines are shared, so every run reports the CPU steal time,
the CPU time other processes used and which processes they were, and the load average.
"""
import os
import threading
import time


def _proc_stat_cpu():
    """Aggregate CPU jiffies from /proc/stat: dict of user, nice, system, idle, iowait, irq,
    softirq, steal (None where /proc is absent)."""
    try:
        with open("/proc/stat") as f:
            parts = f.readline().split()
    except OSError:
        return None
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return {n: int(v) for n, v in zip(names, parts[1:1 + len(names)])}


def _loadavg():
    try:
        with open("/proc/loadavg") as f:
            parts = f.read().split()
        running = int(parts[3].split("/")[0])
        return float(parts[0]), running
    except (OSError, ValueError, IndexError):
        return None, None


def _process_times():
    """{pid: (cpu seconds used so far, command)} for every process readable in /proc."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out = {}
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return out
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            ppid = int(fields[1])
            cpu = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                cmd = ""
            words = (cmd or comm).split() or [comm]
            words[0] = os.path.basename(words[0])  # "python script.py", not the interpreter's path
            out[int(pid)] = (cpu, " ".join(words)[:80], ppid)  # one line
        except (OSError, ValueError, IndexError):
            continue
    return out


class LoadMonitor:
    """Measures how busy the machine was while a block ran (use as a context manager).

    result() gives: wall seconds; CPU steal as a percentage of all CPU time (time the hypervisor
    gave our virtual CPUs to someone else); the share of CPU time used by other processes; the
    1-minute load average at start, end and its largest sample; the largest number of runnable
    processes seen (sampled every `interval` seconds); and the other processes that used the most
    CPU time during the block.
    """

    def __init__(self, interval=1.0, top=5):
        self.interval, self.top = interval, top
        self._stop = threading.Event()
        self._samples = []
        self._thread = None
        self.summary = None

    def __enter__(self):
        self._t0 = time.perf_counter()
        self._cpu0 = _proc_stat_cpu()
        self._procs0 = _process_times()
        self._self0 = os.times()
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        load1, running = _loadavg()
        if load1 is not None:
            self._samples.append((load1, running))

    def _loop(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()
        self.summary = self._summarize()
        return False

    def _summarize(self):
        wall = time.perf_counter() - self._t0
        cpu1, procs1, self1 = _proc_stat_cpu(), _process_times(), os.times()
        mine = (self1.user - self._self0.user) + (self1.system - self._self0.system) \
            + (self1.children_user - self._self0.children_user) \
            + (self1.children_system - self._self0.children_system)
        out = {"seconds": round(wall, 2), "our_cpu_seconds": round(mine, 2)}
        if self._cpu0 and cpu1:
            d = {k: cpu1[k] - self._cpu0[k] for k in cpu1}
            total = sum(d.values()) or 1
            tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
            busy = total - d["idle"] - d["iowait"] - d["steal"]
            out["steal_percent"] = round(100.0 * d["steal"] / total, 2)
            out["busy_percent"] = round(100.0 * busy / total, 1)
            out["others_cpu_percent"] = round(max(0.0, 100.0 * (busy / tick - mine) / (total / tick)), 1)
        if self._samples:
            loads = [s[0] for s in self._samples]
            out["loadavg_1min"] = {"start": loads[0], "end": loads[-1], "max": max(loads)}
            out["runnable_max"] = max(s[1] for s in self._samples)
        me = os.getpid()
        others = []
        for pid, (cpu, cmd, ppid) in procs1.items():
            if pid == me or ppid == me:
                continue
            used = cpu - self._procs0.get(pid, (0.0, "", 0))[0]
            if used > 0.05 * wall and used > 0.2:
                others.append({"pid": pid, "cpu_seconds": round(used, 1), "command": cmd})
        others.sort(key=lambda p: -p["cpu_seconds"])
        out["other_processes"] = others[:self.top]
        return out


def describe_load(load):
    """One line for a LoadMonitor summary."""
    if not load:
        return "load: not measured"
    parts = [f"{load['seconds']:.0f} s"]
    if "steal_percent" in load:
        parts.append(f"CPU steal {load['steal_percent']:.1f}%")
        parts.append(f"other processes {load['others_cpu_percent']:.0f}% of CPU time")
    if "loadavg_1min" in load:
        la = load["loadavg_1min"]
        parts.append(f"load average {la['start']:.1f} -> {la['end']:.1f} (max {la['max']:.1f})")
    if load.get("other_processes"):
        top = load["other_processes"][0]
        parts.append(f"busiest other process: {top['command'][:50]!r} ({top['cpu_seconds']} CPU s)")
    return "; ".join(parts)
