"""What every side-by-side benchmark here needs: the machine it ran on, the load, timed runs of a
command with its peak memory, and the instruction-set paths a user's machine may take.

Used by convert_bench.py, merge_bench.py, write_bench.py and container_bench.py. Conventions
(docs/BENCHMARKS.md): commands run with the flags a user types (defaults); rounds alternate the
tools; the best of the rounds is kept; the load average before and after is printed, since other
processes share the machine.
"""
import os, re, subprocess, time


def cpu_description():
    """'AMD EPYC (family 25 model 17), 2 cores, AVX-512' — from /proc/cpuinfo."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return "unknown CPU"
    def field(name):
        m = re.search(rf"^{name}\s*:\s*(.*)$", info, re.M)
        return m.group(1).strip() if m else "?"
    flags = set(field("flags").split())
    isa = "AVX-512" if "avx512f" in flags else ("AVX2/FMA" if "avx2" in flags and "fma" in flags else "no AVX2")
    return f"{field('model name')} (family {field('cpu family')} model {field('model')}), {os.cpu_count()} cores, {isa}"


def has_avx512():
    try:
        return "avx512f" in open("/proc/cpuinfo").read().split()
    except OSError:
        return False


def simd_paths():
    """The instruction-set paths to measure: the machine's own, and AVX2 when the machine has
    AVX-512 (users' machines often have only AVX2; `TLORA_SIMD=avx2` takes that path here)."""
    return [("native", {}), ("avx2", {"TLORA_SIMD": "avx2"})] if has_avx512() else [("native", {})]


def load():
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def timed(cmd, env=None, check=True):
    """Runs `cmd`; returns (wall seconds, peak RSS bytes, user s, system s, stdout).

    GNU time measures that process alone: a child forked from this Python process would report
    this process's RSS at fork time (ru_maxrss counts the time before exec)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    t = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M %U %S"] + cmd, capture_output=True, text=True, env=full_env)
    wall = time.perf_counter() - t
    if check and r.returncode != 0:
        raise SystemExit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    line = [l for l in r.stderr.splitlines() if l.startswith("TIME ")][-1].split()
    return wall, int(line[2]) * 1024, float(line[3]), float(line[4]), r.stdout


def best(runs):
    """The run with the least wall time."""
    return min(runs, key=lambda r: r[0])


def runs_text(runs):
    return ", ".join(f"{r[0]:.2f}" for r in runs)
